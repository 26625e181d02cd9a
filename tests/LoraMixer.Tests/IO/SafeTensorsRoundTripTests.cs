using System.Buffers.Binary;
using System.Text;
using LoraMixer.IO;
using TorchSharp;

namespace LoraMixer.Tests.IO;

public sealed class SafeTensorsRoundTripTests
{
    private static float[] Floats(torch.Tensor t) => t.data<float>().ToArray();

    [Fact]
    public void Round_trip_keeps_values_dtypes_shapes_names_order_and_metadata()
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(TestPaths.NewTempDir(), "model.safetensors");
        var tensors = new List<KeyValuePair<string, torch.Tensor>>
        {
            new("z.cube", torch.arange(24, dtype: torch.float32).reshape(2, 3, 4) - 7.5f),
            new("a.scalar", torch.tensor(3.25f)),
            new("m.empty", torch.zeros(0, 3)),
            new("ints64", torch.tensor(new long[] { long.MinValue, -1, 0, long.MaxValue })),
            new("ints32", torch.tensor(new int[] { int.MinValue, -1, 0, int.MaxValue }).reshape(2, 2)),
            new("i32.scalar", torch.tensor(42)),
            new("i64.empty", torch.zeros(new long[] { 0 }, dtype: torch.int64)),
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode \"quoted\"" };

        SafeTensorsWriter.Write(path, tensors, metadata);

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(tensors.Select(t => t.Key), file.Tensors.Keys);
        Assert.Equal(metadata, file.Metadata);
        foreach (var (name, expected) in tensors)
        {
            using var actual = file.Read(name);
            Assert.Equal(expected.dtype, actual.dtype);
            Assert.Equal(expected.shape, actual.shape);
            Assert.Equal(expected.shape, file.Tensors[name].Shape);
            Assert.True(expected.equal(actual).all().item<bool>(), name);
        }
        Assert.Equal(SafeTensorsDType.F32, file.Tensors["a.scalar"].DType);
        Assert.Equal(SafeTensorsDType.I64, file.Tensors["ints64"].DType);
        Assert.Equal(SafeTensorsDType.I32, file.Tensors["ints32"].DType);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp"));
    }

    [Fact]
    public void Non_contiguous_tensors_are_written_in_logical_order()
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(TestPaths.NewTempDir(), "t.safetensors");
        var transposed = torch.arange(6, dtype: torch.float32).reshape(2, 3).t();
        SafeTensorsWriter.Write(path, [new("t", transposed)]);
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, Floats(file.Read("t")));
        Assert.Equal(new long[] { 3, 2 }, file.Tensors["t"].Shape);
    }

    [Fact]
    public void Header_of_a_small_file_is_laid_out_byte_by_byte_like_the_python_library()
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(TestPaths.NewTempDir(), "t.safetensors");
        SafeTensorsWriter.Write(path, [new("w", torch.tensor(new float[] { 1f, -2f }))]);

        byte[] bytes = File.ReadAllBytes(path);
        string json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"; // 54 bytes
        Assert.Equal(54, json.Length);
        string padded = json + "  "; // to 56, a multiple of 8
        Assert.Equal(56ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        Assert.Equal(padded, Encoding.UTF8.GetString(bytes, 8, 56));
        Assert.Equal(new byte[] { 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0 }, bytes[64..]);
        Assert.Equal(72, bytes.Length);
    }

    [Fact]
    public void Header_with_metadata_puts_it_first_and_pads_to_eight()
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(TestPaths.NewTempDir(), "t.safetensors");
        SafeTensorsWriter.Write(path, [new("i", torch.tensor(new long[] { 5 }))], new Dictionary<string, string> { ["k"] = "v" });
        byte[] bytes = File.ReadAllBytes(path);
        int length = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, length % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, length);
        Assert.Equal("{\"__metadata__\":{\"k\":\"v\"},\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", header.TrimEnd(' '));
        Assert.Equal(5L, BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(8 + length)));
    }

    [Theory]
    [InlineData((ushort)0x3C00, 1.0f)]
    [InlineData((ushort)0xBC00, -1.0f)]
    [InlineData((ushort)0x0000, 0.0f)]
    [InlineData((ushort)0x3555, 0.333251953125f)]
    [InlineData((ushort)0x7BFF, 65504f)]           // largest finite half
    [InlineData((ushort)0x0400, 6.103515625e-05f)] // smallest normal half, 2^-14
    [InlineData((ushort)0x0001, 5.9604644775390625e-08f)] // smallest subnormal, 2^-24
    [InlineData((ushort)0x83FF, -6.097555160522461e-05f)]  // largest negative subnormal
    [InlineData((ushort)0x7C00, float.PositiveInfinity)]
    [InlineData((ushort)0xFC00, float.NegativeInfinity)]
    public void F16_bit_patterns_decode_exactly(ushort bits, float expected)
    {
        string path = RawSafeTensors.WriteFile(TestPaths.NewTempDir(),
            "{\"h\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[0,2]}}", RawSafeTensors.Halves(bits));
        using var file = SafeTensorsFile.Open(path);
        using var t = file.Read("h");
        Assert.Equal(torch.ScalarType.Float32, t.dtype);
        Assert.Empty(t.shape);
        Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(t.item<float>()));
    }

    [Theory]
    [InlineData((ushort)0x3F80, 1.0f)]
    [InlineData((ushort)0xBF80, -1.0f)]
    [InlineData((ushort)0x4049, 3.140625f)]
    [InlineData((ushort)0x0001, 9.183549615799121e-41f)] // subnormal: float32 bits 0x00010000
    [InlineData((ushort)0x8000, -0.0f)]
    [InlineData((ushort)0x7F80, float.PositiveInfinity)]
    [InlineData((ushort)0xFF80, float.NegativeInfinity)]
    public void BF16_bit_patterns_decode_as_the_high_half_of_float32(ushort bits, float expected)
    {
        string path = RawSafeTensors.WriteFile(TestPaths.NewTempDir(),
            "{\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[0,2]}}", RawSafeTensors.Halves(bits));
        using var file = SafeTensorsFile.Open(path);
        using var t = file.Read("b");
        Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(t.data<float>()[0]));
        Assert.Equal((int)bits << 16, BitConverter.SingleToInt32Bits(t.data<float>()[0]));
    }

    [Fact]
    public void NaN_patterns_stay_NaN()
    {
        string path = RawSafeTensors.WriteFile(TestPaths.NewTempDir(),
            "{\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]},\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[2,4]}}",
            RawSafeTensors.Halves(0x7E00, 0x7FC0));
        using var file = SafeTensorsFile.Open(path);
        Assert.True(float.IsNaN(file.Read("h").item<float>()));
        Assert.True(float.IsNaN(file.Read("b").item<float>()));
    }

    [Fact]
    public void Long_half_tensors_at_odd_offsets_decode_every_element()
    {
        // 1001 elements exercise the vector loop and its scalar tail; the 2-byte gap before the data
        // makes the source unaligned for 4-byte loads.
        var rng = new Random(7);
        ushort[] halves = Enumerable.Range(0, 1001).Select(_ => (ushort)rng.Next(0, 0x10000)).ToArray();
        byte[] data = [0, 0, .. RawSafeTensors.Halves(halves), .. RawSafeTensors.Halves(halves)];
        string path = RawSafeTensors.WriteFile(TestPaths.NewTempDir(),
            "{\"b\":{\"dtype\":\"BF16\",\"shape\":[7,143],\"data_offsets\":[2,2004]},\"h\":{\"dtype\":\"F16\",\"shape\":[1001],\"data_offsets\":[2004,4006]}}", data);
        using var file = SafeTensorsFile.Open(path);
        float[] b = file.Read("b").data<float>().ToArray();
        float[] h = file.Read("h").data<float>().ToArray();
        for (int i = 0; i < halves.Length; i++)
        {
            Assert.Equal((int)halves[i] << 16, BitConverter.SingleToInt32Bits(b[i]));
            Assert.Equal((float)BitConverter.UInt16BitsToHalf(halves[i]), h[i]);
        }
    }

    [Theory]
    [InlineData(SafeTensorsDType.F32)]
    [InlineData(SafeTensorsDType.F16)]
    [InlineData(SafeTensorsDType.BF16)]
    public void Every_float_storage_type_round_trips_representable_values_in_every_shape(SafeTensorsDType dtype)
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(TestPaths.NewTempDir(), "t.safetensors");
        float[] values = [1f, -2.5f, 0.15625f, 1024f, 0f];
        // Quarters up to +-3 are exact in F16 and BF16 alike.
        var cube = (torch.arange(24, dtype: torch.float32) / 4f - 3f).reshape(2, 3, 4);
        SafeTensorsWriter.Write(path,
        [
            new("w", torch.tensor(values)), new("s", torch.tensor(-0.75f)), new("e", torch.zeros(0, 3)),
            new("c", cube), new("n", torch.tensor(new[] { 3L })),
        ], null, dtype);
        using var file = SafeTensorsFile.Open(path);
        int size = dtype == SafeTensorsDType.F32 ? 4 : 2;
        Assert.Equal(dtype, file.Tensors["w"].DType);
        Assert.Equal(5 * size, file.Tensors["w"].End - file.Tensors["w"].Begin);
        Assert.Equal(values, Floats(file.Read("w")));
        Assert.Empty(file.Read("s").shape);
        Assert.Equal(-0.75f, file.Read("s").item<float>());
        Assert.Equal(new long[] { 0, 3 }, file.Read("e").shape);
        Assert.Equal(0, file.Tensors["e"].End - file.Tensors["e"].Begin);
        Assert.True(cube.equal(file.Read("c")).all().item<bool>());
        Assert.Equal(24 * size, file.Tensors["c"].End - file.Tensors["c"].Begin);
        Assert.Equal(SafeTensorsDType.I64, file.Tensors["n"].DType);
    }

    [Fact]
    public void Mutating_a_shape_array_from_the_header_cannot_change_what_is_read()
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(TestPaths.NewTempDir(), "t.safetensors");
        SafeTensorsWriter.Write(path, [new("a", torch.ones(2)), new("b", torch.zeros(2))]);
        using var file = SafeTensorsFile.Open(path);
        file.Tensors["a"].Shape[0] = 4;
        Assert.Equal(new float[] { 1, 1 }, Floats(file.Read("a")));
    }

    [Fact]
    public void Writer_rejects_unsupported_dtypes_and_bad_names_without_creating_a_file()
    {
        using var scope = torch.NewDisposeScope();
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(dir, "t.safetensors");
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [new("d", torch.zeros(2, dtype: torch.float64))]));
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [new("b", torch.zeros(2, dtype: torch.@bool))]));
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [new("x", torch.zeros(1)), new("x", torch.zeros(1))]));
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [new("__metadata__", torch.zeros(1))]));
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [new("x", torch.zeros(1))], null, SafeTensorsDType.I32));
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public void Writing_replaces_an_existing_file_atomically()
    {
        using var scope = torch.NewDisposeScope();
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(dir, "t.safetensors");
        SafeTensorsWriter.Write(path, [new("old", torch.zeros(1))]);
        using (var reader = SafeTensorsFile.Open(path))
        {
            // An open mapping of the old file must not stop the replacement, nor see the new contents.
            SafeTensorsWriter.Write(path, [new("new", torch.ones(3))]);
            Assert.Equal(new float[] { 0 }, Floats(reader.Read("old")));
        }
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(["new"], file.Tensors.Keys);
        Assert.Single(Directory.GetFileSystemEntries(dir));
    }
}
