using TorchSharp;

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

/// <summary>One tensor's entry in a safetensors header; offsets are relative to the data section.</summary>
public sealed record SafeTensorInfo(string Name, SafeTensorsDType DType, long[] Shape, long Begin, long End);

/// <summary>
/// A validated, memory-mapped safetensors file (STUB: to be implemented by the IO work).
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    private SafeTensorsFile() { }

    /// <summary>Opens and validates the header; throws <see cref="Errors.ModelFormatException"/> on bad input.</summary>
    public static SafeTensorsFile Open(string path) => throw new NotImplementedException();

    /// <summary>Path of the file.</summary>
    public string Path => throw new NotImplementedException();

    /// <summary>Header entries by tensor name.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors => throw new NotImplementedException();

    /// <summary>The optional <c>__metadata__</c> map.</summary>
    public IReadOnlyDictionary<string, string> Metadata => throw new NotImplementedException();

    /// <summary>Reads a tensor onto the CPU: F32/F16/BF16 as float32, I64 as int64, I32 as int32.</summary>
    public torch.Tensor Read(string name) => throw new NotImplementedException();

    /// <inheritdoc />
    public void Dispose() { }
}
