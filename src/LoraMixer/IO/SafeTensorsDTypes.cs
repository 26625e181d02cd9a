using TorchSharp;

namespace LoraMixer.IO;

/// <summary>Names, sizes and TorchSharp counterparts of <see cref="SafeTensorsDType"/>.</summary>
internal static class SafeTensorsDTypes
{
    /// <summary>The spelling in error messages, in the order users most likely meet them.</summary>
    public const string SupportedList = "F32, F16, BF16, I64, I32";

    public static bool TryParse(string text, out SafeTensorsDType dtype)
    {
        // Ordinal and case-sensitive on purpose: the format spells them in upper case, and accepting
        // "f32" would let files through that the Python library rejects.
        switch (text)
        {
            case "F32": dtype = SafeTensorsDType.F32; return true;
            case "F16": dtype = SafeTensorsDType.F16; return true;
            case "BF16": dtype = SafeTensorsDType.BF16; return true;
            case "I64": dtype = SafeTensorsDType.I64; return true;
            case "I32": dtype = SafeTensorsDType.I32; return true;
            default: dtype = default; return false;
        }
    }

    public static string Name(SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F32 => "F32",
        SafeTensorsDType.F16 => "F16",
        SafeTensorsDType.BF16 => "BF16",
        SafeTensorsDType.I64 => "I64",
        SafeTensorsDType.I32 => "I32",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>Bytes per element in the file.</summary>
    public static int Size(SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F32 or SafeTensorsDType.I32 => 4,
        SafeTensorsDType.F16 or SafeTensorsDType.BF16 => 2,
        SafeTensorsDType.I64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>The element type of the tensor that reading produces (half types widen to float32).</summary>
    public static torch.ScalarType ReadType(SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16 => torch.ScalarType.Float32,
        SafeTensorsDType.I64 => torch.ScalarType.Int64,
        SafeTensorsDType.I32 => torch.ScalarType.Int32,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };
}
