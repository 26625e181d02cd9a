namespace LoraMixer.IO;

/// <summary>Element types of the safetensors format that LoraMixer reads and writes.</summary>
public enum SafeTensorsDType
{
    /// <summary>IEEE float32.</summary>
    F32,
    /// <summary>IEEE float16.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>int64.</summary>
    I64,
    /// <summary>int32.</summary>
    I32,
}
