using System.Buffers.Binary;
using LoraMixer.Errors;
using LoraMixer.IO;

namespace LoraMixer.Tests.IO;

public sealed class SafeTensorsBadInputTests
{
    private const string Good = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    private static readonly byte[] EightBytes = new byte[8];

    /// <summary>Opens and reads every tensor; returns the error, which must name the file.</summary>
    private static ModelFormatException Fails(byte[] fileBytes, params string[] fragments)
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "bad.safetensors");
        File.WriteAllBytes(path, fileBytes);
        var error = Assert.Throws<ModelFormatException>(() =>
        {
            using var file = SafeTensorsFile.Open(path);
            foreach (string name in file.Tensors.Keys) file.Read(name).Dispose();
        });
        Assert.Contains(path, error.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, error.Message);
        return error;
    }

    private static ModelFormatException FailsWithHeader(string header, byte[] data, params string[] fragments) =>
        Fails(RawSafeTensors.Build(header, data), fragments);

    [Fact]
    public void The_well_formed_baseline_opens()
    {
        string path = RawSafeTensors.WriteFile(TestPaths.NewTempDir(), Good, RawSafeTensors.Floats(1, 2));
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(new float[] { 1, 2 }, file.Read("w").data<float>().ToArray());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    public void File_shorter_than_eight_bytes(int length) => Fails(new byte[length], "shorter than the 8-byte header length");

    [Fact]
    public void Header_length_beyond_the_file() =>
        Fails(RawSafeTensors.Build(Good, EightBytes, headerLengthOverride: 1000), "header length 1000 goes beyond the end of the file");

    [Theory]
    [InlineData(100_000_001ul)]
    [InlineData(ulong.MaxValue)]
    [InlineData(0x8000_0000_0000_0000ul)]
    public void Absurd_header_length(ulong length) =>
        Fails(RawSafeTensors.Build(Good, EightBytes, headerLengthOverride: length), "is absurd");

    [Fact]
    public void Header_that_is_not_utf8()
    {
        byte[] bytes = RawSafeTensors.Build("{\"w?\":{}}", EightBytes);
        bytes[8 + 3] = 0xFF;
        Fails(bytes, "not valid UTF-8");
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("{\"w\":}")]
    [InlineData("not json")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} trailing")]
    public void Header_that_is_not_json(string header) => FailsWithHeader(header, EightBytes, "not valid JSON");

    [Theory]
    [InlineData("[]", "array")]
    [InlineData("\"text\"", "string")]
    [InlineData("42", "number")]
    [InlineData("null", "null")]
    public void Header_that_is_not_an_object(string header, string kind) => FailsWithHeader(header, EightBytes, $"is a JSON {kind}, not an object");

    [Theory]
    [InlineData("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "no \"dtype\"")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", "no \"shape\"")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", "no \"data_offsets\"")]
    [InlineData("{\"w\":[1,2]}", "instead of an object")]
    [InlineData("{\"w\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", "as dtype instead of a string")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", "as shape instead of an array")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", "shape[0] = 2.5, which is not an integer")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", "not an integer")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[1e30],\"data_offsets\":[0,8]}}", "not an integer")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", "instead of an array [begin, end]")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"a\":0}}}", "instead of an array [begin, end]")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", "data_offsets[1]")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", "data_offsets[0] = -8")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}}", "data_offsets[1]")]
    [InlineData("{\"__metadata__\":[1],\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "__metadata__")]
    [InlineData("{\"__metadata__\":{\"n\":1},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "not a string")]
    [InlineData("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "listed twice")]
    [InlineData("{\"w\\ud800\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", "")]
    public void Entry_with_missing_fields_or_wrong_json_types(string header, string fragment)
    {
        var error = FailsWithHeader(header, RawSafeTensors.Floats(1, 2), fragment);
        Assert.Contains("download or export it again", error.Message);
    }

    [Fact]
    public void Negative_dimension() =>
        FailsWithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", EightBytes, "'w'", "negative dimension");

    [Theory]
    [InlineData("[4294967296,4294967296]")]
    [InlineData("[9223372036854775807,2]")]
    [InlineData("[3037000500,3037000500,0]")]
    [InlineData("[2305843009213693952]")] // 2^61 elements of 4 bytes: the byte count overflows
    public void Shape_product_overflow(string shape) =>
        FailsWithHeader($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[0,8]}}}}", EightBytes, "'w'", "overflows");

    [Fact]
    public void Too_many_dimensions() =>
        FailsWithHeader($"{{\"w\":{{\"dtype\":\"F32\",\"shape\":[{string.Join(",", Enumerable.Repeat(1, 65))}],\"data_offsets\":[0,4]}}}}", new byte[4], "65 dimensions");

    [Theory]
    [InlineData("F64")]
    [InlineData("U8")]
    [InlineData("f32")]
    [InlineData("")]
    public void Unknown_dtype_lists_the_supported_ones(string dtype)
    {
        var error = FailsWithHeader($"{{\"w\":{{\"dtype\":\"{dtype}\",\"shape\":[2],\"data_offsets\":[0,8]}}}}", EightBytes, "'w'", "F32, F16, BF16, I64, I32");
        Assert.Contains($"dtype '{dtype}'", error.Message);
    }

    [Fact]
    public void End_before_begin() =>
        FailsWithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", EightBytes, "'w'", "end before they begin");

    [Fact]
    public void Offsets_outside_the_data_section() =>
        FailsWithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", EightBytes, "'w'", "outside the data section, which is 8 bytes");

    [Fact]
    public void Truncated_data() =>
        FailsWithHeader(Good, new byte[7], "outside the data section");

    [Fact]
    public void Overlapping_tensors() =>
        FailsWithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
            new byte[12], "'a'", "'b'", "overlap");

    [Fact]
    public void Byte_length_that_disagrees_with_dtype_and_shape() =>
        FailsWithHeader("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", EightBytes, "'w'", "needs 12 bytes", "span 8");

    [Fact]
    public void Missing_file_and_folder_paths()
    {
        string dir = TestPaths.NewTempDir();
        string missing = Path.Combine(dir, "nope.safetensors");
        Assert.Contains(missing, Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(missing)).Message);
        Assert.Contains("is a folder", Assert.Throws<ModelFormatException>(() => SafeTensorsFile.Open(dir)).Message);
    }

    [Fact]
    public void Reading_a_missing_tensor_names_file_and_tensor()
    {
        string path = RawSafeTensors.WriteFile(TestPaths.NewTempDir(), Good, RawSafeTensors.Floats(1, 2));
        using var file = SafeTensorsFile.Open(path);
        var error = Assert.Throws<ModelFormatException>(() => file.Read("lm_head.weight"));
        Assert.Contains(path, error.Message);
        Assert.Contains("'lm_head.weight'", error.Message);
    }

    [Fact]
    public void Gaps_between_tensors_and_trailing_bytes_are_tolerated()
    {
        string path = RawSafeTensors.WriteFile(TestPaths.NewTempDir(),
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},\"z\":{\"dtype\":\"I32\",\"shape\":[0],\"data_offsets\":[5,5]}}",
            [0, 0, 0, 0, .. RawSafeTensors.Floats(2.5f), 9, 9]);
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(2.5f, file.Read("a").data<float>()[0]);
        Assert.Equal(new long[] { 0 }, file.Read("z").shape);
    }

    [Fact]
    public void Header_length_field_is_little_endian()
    {
        byte[] bytes = RawSafeTensors.Build(Good, RawSafeTensors.Floats(1, 2));
        Assert.Equal((ulong)Good.Length, BinaryPrimitives.ReadUInt64LittleEndian(bytes));
    }
}
