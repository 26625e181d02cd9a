using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using TorchSharp;

namespace LoraMixer.IO;

/// <summary>Writes safetensors files that the Python <c>safetensors</c> library and <see cref="SafeTensorsFile"/> read.</summary>
public static class SafeTensorsWriter
{
    /// <summary>
    /// Writes float32/int64/int32 tensors (name order kept) atomically: a temporary file in the same
    /// folder, then a rename.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null) => Write(path, tensors, metadata, SafeTensorsDType.F32);

    /// <summary>
    /// Like <see cref="Write(string, IEnumerable{KeyValuePair{string, torch.Tensor}}, IReadOnlyDictionary{string, string}?)"/>,
    /// but stores float32 tensors as <paramref name="floatType"/> (F32, F16 or BF16, rounding to nearest even);
    /// int64 and int32 tensors are stored as I64 and I32.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor is not float32, int64 or int32, a name repeats or is
    /// <c>__metadata__</c>, or <paramref name="floatType"/> is not a float type.</exception>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata, SafeTensorsDType floatType)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        if (floatType is not (SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16))
            throw new ArgumentException($"floatType must be F32, F16 or BF16, not {floatType}.", nameof(floatType));

        var entries = new List<PendingTensor>();
        foreach (var (name, tensor) in tensors)
        {
            ArgumentNullException.ThrowIfNull(name, nameof(tensors));
            if (tensor is null) throw new ArgumentException($"Tensor '{name}' is null.", nameof(tensors));
            SafeTensorsDType dtype = tensor.dtype switch
            {
                torch.ScalarType.Float32 => floatType,
                torch.ScalarType.Int64 => SafeTensorsDType.I64,
                torch.ScalarType.Int32 => SafeTensorsDType.I32,
                _ => throw new ArgumentException(
                    $"Tensor '{name}' has dtype {tensor.dtype}; the safetensors writer takes float32, int64 or int32 tensors (convert with .to(torch.float32) first).",
                    nameof(tensors)),
            };
            torch.Tensor captured = tensor;
            entries.Add(new PendingTensor(name, dtype, tensor.shape, () => captured));
        }
        WriteStreaming(path, entries, metadata);
    }

    /// <summary>
    /// Writes tensors that are produced one at a time, so a converter never holds a whole model: the header
    /// comes from the declared names, dtypes and shapes, then each <see cref="PendingTensor.Produce"/>
    /// runs inside its own dispose scope (tensors it creates there are freed after writing; a tensor it
    /// merely returns from outside is left alone).
    /// </summary>
    internal static void WriteStreaming(string path, IReadOnlyList<PendingTensor> entries,
        IReadOnlyDictionary<string, string>? metadata)
    {
        byte[] header = BuildHeader(entries, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (PendingTensor entry in entries)
            {
                using var scope = torch.NewDisposeScope();
                torch.Tensor produced = entry.Produce();
                if (!produced.shape.SequenceEqual(entry.Shape))
                    throw new ArgumentException(
                        $"Tensor '{entry.Name}' changed shape while writing: declared {SafeTensorsHeader.FormatShape(entry.Shape)}, got {SafeTensorsHeader.FormatShape(produced.shape)}.");
                torch.Tensor stored = produced.to(StorageType(entry.DType), torch.CPU).contiguous();
                TensorMemory.WriteTo(stored, stream);
            }
        });
    }

    /// <summary>
    /// The JSON header, compact like the Python library writes it, padded with spaces to a multiple of
    /// 8 bytes so that the data section starts aligned.
    /// </summary>
    internal static byte[] BuildHeader(IReadOnlyList<PendingTensor> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps non-ASCII names readable, as serde_json writes them.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is not null)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata)
                {
                    ArgumentNullException.ThrowIfNull(value, nameof(metadata));
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (PendingTensor entry in entries)
            {
                if (entry.Name == "__metadata__")
                    throw new ArgumentException("A tensor cannot be named __metadata__; the name is reserved by the safetensors format.");
                if (!names.Add(entry.Name))
                    throw new ArgumentException($"Tensor name '{entry.Name}' appears twice.");
                long bytes = checked(entry.Shape.Aggregate(1L, (a, b) => a * b) * SafeTensorsDTypes.Size(entry.DType));
                json.WriteStartObject(entry.Name);
                json.WriteString("dtype", SafeTensorsDTypes.Name(entry.DType));
                json.WriteStartArray("shape");
                foreach (long dim in entry.Shape) json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        int padding = (8 - buffer.WrittenCount % 8) % 8;
        byte[] header = new byte[buffer.WrittenCount + padding];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static torch.ScalarType StorageType(SafeTensorsDType dtype) => dtype switch
    {
        SafeTensorsDType.F32 => torch.ScalarType.Float32,
        SafeTensorsDType.F16 => torch.ScalarType.Float16,
        SafeTensorsDType.BF16 => torch.ScalarType.BFloat16,
        SafeTensorsDType.I64 => torch.ScalarType.Int64,
        SafeTensorsDType.I32 => torch.ScalarType.Int32,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };
}
