using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using LoraMixer.Errors;
using TorchSharp;

namespace LoraMixer.IO;

/// <summary>
/// Reads and writes float32 arrays in NumPy's <c>.npy</c> format (version 1.0, C order, little-endian),
/// byte for byte as <c>numpy.save</c> writes them, so results can be compared in Python.
/// </summary>
public static class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    // NumPy aligns the data to 64 bytes so it can be memory-mapped and vector-loaded.
    private const int Alignment = 64;

    // NumPy >= 1.23 reserves room for the first axis to grow to 21 digits, so that an array written
    // incrementally can have its header rewritten in place; matching it keeps our files byte-identical.
    private const int GrowthAxisMaxDigits = 21;

    /// <summary>
    /// Writes <paramref name="tensor"/> (any floating dtype, converted to float32; any device) to
    /// <paramref name="path"/> atomically.
    /// </summary>
    /// <exception cref="ArgumentException">The tensor is not of a floating-point type.</exception>
    public static void WriteFloat32(string path, torch.Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensor);
        if (!tensor.is_floating_point())
            throw new ArgumentException($"NpyFile.WriteFloat32 takes a floating-point tensor, not {tensor.dtype}.", nameof(tensor));

        byte[] preamble = Preamble(tensor.shape);
        using var scope = torch.NewDisposeScope();
        var data = tensor.to(torch.ScalarType.Float32, torch.CPU).contiguous();
        AtomicFile.Write(path, stream =>
        {
            stream.Write(preamble);
            TensorMemory.WriteTo(data, stream);
        });
    }

    /// <summary>
    /// Reads a float32 <c>.npy</c> file (versions 1.0 to 3.0, C order, little-endian); throws
    /// <see cref="ModelFormatException"/> for anything else or a damaged file.
    /// </summary>
    public static (float[] Data, long[] Shape) ReadFloat32(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new ModelFormatException($"NumPy file {path} does not exist; check the path.");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            return Read(path, stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"Cannot read NumPy file {path}: {e.Message}", e);
        }
    }

    /// <summary>Magic, version 1.0, header length and the padded header dictionary of a float32 array.</summary>
    internal static byte[] Preamble(long[] shape)
    {
        string shapeText = shape.Length switch
        {
            0 => "()",
            1 => $"({shape[0].ToString(CultureInfo.InvariantCulture)},)",
            _ => "(" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")",
        };
        var header = new StringBuilder($"{{'descr': '<f4', 'fortran_order': False, 'shape': {shapeText}, }}");
        if (shape.Length > 0)
            header.Append(' ', Math.Max(0, GrowthAxisMaxDigits - shape[0].ToString(CultureInfo.InvariantCulture).Length));
        int unpadded = Magic.Length + 2 + 2 + header.Length + 1;
        // Like NumPy: a full block of padding when already aligned, never zero.
        header.Append(' ', Alignment - unpadded % Alignment);
        header.Append('\n');
        if (header.Length > ushort.MaxValue)
            throw new ArgumentException($"A tensor of rank {shape.Length} does not fit a version 1.0 .npy header.", nameof(shape));

        byte[] preamble = new byte[Magic.Length + 4 + header.Length];
        Magic.CopyTo(preamble, 0);
        preamble[6] = 1;
        preamble[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(preamble.AsSpan(8), (ushort)header.Length);
        Encoding.ASCII.GetBytes(header.ToString(), preamble.AsSpan(10));
        return preamble;
    }

    private static (float[] Data, long[] Shape) Read(string path, FileStream stream)
    {
        ModelFormatException Fail(string problem) =>
            new($"Invalid NumPy file {path}: {problem}. Write it with numpy.save(path, array.astype('<f4')) or NpyFile.WriteFloat32.");

        long length = stream.Length;
        Span<byte> start = stackalloc byte[12];
        if (length < 10 || stream.ReadAtLeast(start[..10], 10, throwOnEndOfStream: false) < 10)
            throw Fail($"it is {length} bytes long, too short for a .npy preamble");
        if (!start[..6].SequenceEqual(Magic))
            throw Fail("it does not start with the .npy magic \\x93NUMPY");

        byte major = start[6], minor = start[7];
        long headerLength;
        int lengthFieldEnd;
        if (major == 1 && minor == 0)
        {
            headerLength = BinaryPrimitives.ReadUInt16LittleEndian(start[8..]);
            lengthFieldEnd = 10;
        }
        else if (major is 2 or 3 && minor == 0)
        {
            if (length < 12 || stream.ReadAtLeast(start[10..12], 2, throwOnEndOfStream: false) < 2)
                throw Fail("it is too short for a version 2.0 preamble");
            headerLength = BinaryPrimitives.ReadUInt32LittleEndian(start[8..]);
            lengthFieldEnd = 12;
        }
        else
        {
            throw Fail($"it has format version {major}.{minor}; versions 1.0, 2.0 and 3.0 are supported");
        }
        // NumPy itself refuses headers beyond 10 kB unless told otherwise; 1 MB is far beyond any real one.
        if (headerLength > 1_000_000 || lengthFieldEnd + headerLength > length)
            throw Fail($"its header length {headerLength} goes beyond the file ({length} bytes) or is absurd");

        byte[] headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        string header;
        try
        {
            header = major == 3
                ? new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(headerBytes)
                : Encoding.Latin1.GetString(headerBytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new ModelFormatException($"Invalid NumPy file {path}: its header is not valid UTF-8.", e);
        }

        var fields = NpyHeaderParser.Parse(header, Fail);
        if (!fields.TryGetValue("descr", out object? descr) || descr is not string descrText)
            throw Fail("its header has no string 'descr'");
        if (descrText != "<f4")
            throw Fail($"it holds dtype '{SafeTensorsHeader.Printable(descrText)}', not little-endian float32 ('<f4')");
        if (!fields.TryGetValue("fortran_order", out object? fortran) || fortran is not bool fortranOrder)
            throw Fail("its header has no boolean 'fortran_order'");
        if (fortranOrder)
            throw Fail("it is stored in Fortran (column-major) order; save a C-ordered array (numpy.ascontiguousarray)");
        if (!fields.TryGetValue("shape", out object? shapeValue) || shapeValue is not long[] shape)
            throw Fail("its header has no 'shape' tuple of integers");
        if (fields.Count != 3)
            throw Fail("its header has keys other than 'descr', 'fortran_order' and 'shape'");

        long count = 1;
        foreach (long dim in shape)
        {
            if (dim < 0) throw Fail($"its shape has a negative dimension {dim}");
            if (dim != 0 && count > Array.MaxLength / dim) count = long.MaxValue;
            else count *= dim;
        }
        if (shape.Contains(0)) count = 0;
        if (count > Array.MaxLength / 4)
            throw Fail($"its shape ({string.Join(", ", shape)}) has more elements than one .NET array can hold");

        long dataStart = lengthFieldEnd + headerLength;
        long dataBytes = length - dataStart;
        if (dataBytes != count * 4)
            throw Fail($"its shape ({string.Join(", ", shape)}) needs {count * 4} data bytes, but the file has {dataBytes}");

        float[] data = new float[count];
        stream.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan()));
        if (!BitConverter.IsLittleEndian)
        {
            Span<int> words = MemoryMarshal.Cast<float, int>(data.AsSpan());
            BinaryPrimitives.ReverseEndianness(words, words);
        }
        return (data, shape);
    }
}
