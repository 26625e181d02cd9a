using System.Buffers.Binary;
using System.Text;
using LoraMixer.Errors;
using LoraMixer.IO;
using TorchSharp;

namespace LoraMixer.Tests.IO;

public sealed class NpyFileTests
{
    [Fact]
    public void Header_of_a_2x3_array_matches_numpy_byte_for_byte()
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(TestPaths.NewTempDir(), "a.npy");
        NpyFile.WriteFloat32(path, torch.arange(6, dtype: torch.float32).reshape(2, 3));

        byte[] bytes = File.ReadAllBytes(path);
        // What numpy 1.24 writes for np.save(f, np.arange(6, dtype='<f4').reshape(2, 3)): the dict, 20
        // spaces reserved for the first axis to grow to 21 digits, padding to 128 bytes, then '\n'.
        string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        string header = dict + new string(' ', 128 - 10 - dict.Length - 1) + "\n";
        byte[] expected = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 118, 0, .. Encoding.ASCII.GetBytes(header)];
        Assert.Equal(expected, bytes[..128]);
        Assert.Equal(128 + 24, bytes.Length);
        for (int i = 0; i < 6; i++) Assert.Equal((float)i, BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(128 + 4 * i)));
    }

    [Theory]
    [InlineData(new long[] { 5 }, "(5,)")]
    [InlineData(new long[0], "()")]
    [InlineData(new long[] { 0, 3 }, "(0, 3)")]
    [InlineData(new long[] { 123456789, 0 }, "(123456789, 0)")]
    public void Headers_of_other_shapes_match_numpy(long[] shape, string tuple)
    {
        // numpy 1.24 pads all of these to a 128-byte preamble as well (checked with np.save).
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(TestPaths.NewTempDir(), "a.npy");
        NpyFile.WriteFloat32(path, torch.zeros(shape));
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(118, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)));
        string text = Encoding.ASCII.GetString(bytes, 10, 118);
        Assert.StartsWith($"{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}", text);
        Assert.EndsWith(" \n", text);
        Assert.Equal(128 + 4 * shape.Aggregate(1L, (a, b) => a * b), bytes.Length);
    }

    [Theory]
    [InlineData(new long[] { 2, 3 })]
    [InlineData(new long[] { 7 })]
    [InlineData(new long[0])]
    [InlineData(new long[] { 0, 4 })]
    [InlineData(new long[] { 2, 1, 3, 2 })]
    public void Round_trip(long[] shape)
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(TestPaths.NewTempDir(), "a.npy");
        var tensor = torch.randn(shape, generator: new torch.Generator(3));
        NpyFile.WriteFloat32(path, tensor);
        var (data, readShape) = NpyFile.ReadFloat32(path);
        Assert.Equal(shape, readShape);
        // TorchSharp's ToArray throws on empty multi-dimensional tensors.
        Assert.Equal(tensor.numel() == 0 ? [] : tensor.data<float>().ToArray(), data);
        Assert.Equal(0, new FileInfo(path).Length % 4);
    }

    [Fact]
    public void Non_float32_tensors_are_converted_and_integers_rejected()
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(TestPaths.NewTempDir(), "a.npy");
        NpyFile.WriteFloat32(path, torch.tensor(new double[] { 0.5, 1.5 }).t());
        Assert.Equal(new float[] { 0.5f, 1.5f }, NpyFile.ReadFloat32(path).Data);
        Assert.Throws<ArgumentException>(() => NpyFile.WriteFloat32(path, torch.tensor(new long[] { 1 })));
    }

    [Fact]
    public void Reads_version_2_files()
    {
        string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
        string header = dict + new string(' ', 64 - (12 + dict.Length + 1) % 64) + "\n";
        byte[] bytes = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 2, 0, (byte)header.Length, 0, 0, 0,
            .. Encoding.ASCII.GetBytes(header), 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40];
        string path = Path.Combine(TestPaths.NewTempDir(), "v2.npy");
        File.WriteAllBytes(path, bytes);
        Assert.Equal(new float[] { 1, 2 }, NpyFile.ReadFloat32(path).Data);
    }

    private static byte[] NpyBytes(string dict, int dataBytes, byte major = 1)
    {
        string header = dict + new string(' ', 64 - (10 + dict.Length + 1) % 64) + "\n";
        return [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', major, 0,
            (byte)(header.Length & 0xFF), (byte)(header.Length >> 8), .. Encoding.ASCII.GetBytes(header), .. new byte[dataBytes]];
    }

    [Theory]
    [InlineData("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, "'<f8'")]
    [InlineData("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "'>f4'")]
    [InlineData("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "Fortran")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 7, "needs 8 data bytes")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12, "needs 8 data bytes")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8, "tuple")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8, "integer")]
    [InlineData("{'descr': '<f4', 'fortran_order': False}", 8, "'shape'")]
    [InlineData("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8, "unexpected value")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': True}", 8, "other than")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", 8, "more elements")]
    [InlineData("['descr']", 8, "'{'")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } extra", 8, "after the dictionary")]
    public void Bad_headers_and_sizes(string dict, int dataBytes, string fragment)
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "bad.npy");
        File.WriteAllBytes(path, NpyBytes(dict, dataBytes));
        var error = Assert.Throws<ModelFormatException>(() => NpyFile.ReadFloat32(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(fragment, error.Message);
    }

    [Fact]
    public void Bad_magic_version_and_truncation()
    {
        string dir = TestPaths.NewTempDir();
        byte[] good = NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
        void Bad(byte[] bytes, string fragment)
        {
            string path = Path.Combine(dir, "bad.npy");
            File.WriteAllBytes(path, bytes);
            Assert.Contains(fragment, Assert.Throws<ModelFormatException>(() => NpyFile.ReadFloat32(path)).Message);
        }
        Bad([], "too short");
        Bad(good[..9], "too short");
        Bad(good[..40], "header length");
        byte[] magic = (byte[])good.Clone();
        magic[1] = (byte)'X';
        Bad(magic, "magic");
        byte[] version = (byte[])good.Clone();
        version[6] = 4;
        Bad(version, "version 4.0");
        Assert.Throws<ModelFormatException>(() => NpyFile.ReadFloat32(Path.Combine(dir, "missing.npy")));
    }

    [Fact]
    public void Random_corruption_only_ever_throws_ModelFormatException()
    {
        using var scope = torch.NewDisposeScope();
        string dir = TestPaths.NewTempDir();
        string seedPath = Path.Combine(dir, "seed.npy");
        NpyFile.WriteFloat32(seedPath, torch.ones(3, 4));
        byte[] seed = File.ReadAllBytes(seedPath);
        string path = Path.Combine(dir, "mutant.npy");
        var rng = new Random(99);
        for (int i = 0; i < 2000; i++)
        {
            byte[] bytes = rng.Next(3) == 0 ? seed[..rng.Next(seed.Length)] : (byte[])seed.Clone();
            for (int n = rng.Next(0, 4); n > 0 && bytes.Length > 0; n--) bytes[rng.Next(Math.Min(bytes.Length, 128))] = (byte)rng.Next(256);
            File.WriteAllBytes(path, bytes);
            try
            {
                NpyFile.ReadFloat32(path);
            }
            catch (ModelFormatException)
            {
            }
        }
    }
}
