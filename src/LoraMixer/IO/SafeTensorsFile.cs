using System.Buffers.Binary;
using LoraMixer.Errors;
using TorchSharp;

namespace LoraMixer.IO;

/// <summary>
/// A validated, memory-mapped safetensors file. The header is checked completely when the file is
/// opened, so <see cref="Read"/> can copy tensor bytes straight from the mapping into tensor storage.
/// Reading from several threads at once is safe; disposing while reading is not.
/// </summary>
public sealed class SafeTensorsFile : IDisposable
{
    private readonly MappedFile _mapping;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafeTensorInfo> _tensors;
    private readonly Dictionary<string, string> _metadata;

    // Private copies: SafeTensorInfo.Shape is a mutable array that callers can reach through Tensors,
    // and reads must keep using the validated shape.
    private readonly Dictionary<string, long[]> _shapes;

    private SafeTensorsFile(string path, MappedFile mapping, long dataStart, SafeTensorsHeader.Parsed header)
    {
        Path = path;
        _mapping = mapping;
        _dataStart = dataStart;
        _tensors = header.Tensors;
        _metadata = header.Metadata;
        _shapes = _tensors.ToDictionary(t => t.Key, t => (long[])t.Value.Shape.Clone(), StringComparer.Ordinal);
    }

    /// <summary>Opens and validates the header; throws <see cref="Errors.ModelFormatException"/> on bad input.</summary>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            throw new ModelFormatException($"{path} is a folder, not a safetensors file; pass the .safetensors file inside it (or open the folder with SafeTensorsCheckpoint).");
        if (!File.Exists(path))
            throw new ModelFormatException($"Safetensors file {path} does not exist; check the path, or download the model again.");
        MappedFile mapping = MappedFile.Open(path, "safetensors file", 8, length =>
            SafeTensorsHeader.Fail(path, $"it is {length} bytes long, shorter than the 8-byte header length that starts every safetensors file"));
        long length = mapping.Length;
        try
        {
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(mapping.Span(0, 8));
            if (headerLength > SafeTensorsHeader.MaxHeaderBytes)
                throw SafeTensorsHeader.Fail(path, $"its header length {headerLength} is absurd (more than {SafeTensorsHeader.MaxHeaderBytes} bytes)");
            if ((long)headerLength > length - 8)
                throw SafeTensorsHeader.Fail(path, $"its header length {headerLength} goes beyond the end of the file, which is {length} bytes");
            byte[] json = mapping.Span(8, (int)headerLength).ToArray();
            long dataStart = 8 + (long)headerLength;
            var header = SafeTensorsHeader.Parse(path, json, length - dataStart);
            return new SafeTensorsFile(path, mapping, dataStart, header);
        }
        catch
        {
            mapping.Dispose();
            throw;
        }
    }

    /// <summary>Path of the file.</summary>
    public string Path { get; }

    /// <summary>Header entries by tensor name.</summary>
    public IReadOnlyDictionary<string, SafeTensorInfo> Tensors => _tensors;

    /// <summary>The optional <c>__metadata__</c> map.</summary>
    public IReadOnlyDictionary<string, string> Metadata => _metadata;

    /// <summary>True when the file holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>Reads a tensor onto the CPU: F32/F16/BF16 as float32, I64 as int64, I32 as int32.</summary>
    public torch.Tensor Read(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_tensors.TryGetValue(name, out SafeTensorInfo? info))
            throw new ModelFormatException(
                $"Safetensors file {Path} has no tensor named '{SafeTensorsHeader.Printable(name)}' (it holds {_tensors.Count} tensors); the weights do not match the model's config, or the file is incomplete.");
        return _mapping.ReadTensor(_dataStart + info.Begin, _shapes[name], info.DType);
    }

    /// <inheritdoc />
    public void Dispose() => _mapping.Dispose();
}
