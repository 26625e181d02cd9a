using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using LoraMixer.Errors;
using LoraMixer.IO;
using TorchSharp;
using Xunit.Abstractions;

namespace LoraMixer.Tests.IO;

/// <summary>
/// Corrupts valid files in thousands of ways (fixed seed, so failures reproduce) and checks that
/// opening and reading either works or throws <see cref="ModelFormatException"/>, never anything else.
/// </summary>
public sealed partial class SafeTensorsMutationTests(ITestOutputHelper output)
{
    private const int Variants = 6000;

    private static readonly string[] Numbers =
    [
        "-1", "0", "1", "2", "3", "7", "8", "9", "4096", "2147483648", "4294967296", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "18446744073709551616", "1e400", "2.5", "-0", "1E3", "00",
    ];

    private static readonly string[] Strings =
    [
        "\"F32\"", "\"F16\"", "\"BF16\"", "\"I64\"", "\"I32\"", "\"F64\"", "\"U8\"", "\"BOOL\"", "\"\"", "\"dtype\"",
        "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\"\\ud800\"", "\"\\u0000\"", "\"a\"",
    ];

    private static readonly string[] Fragments = ["{", "}", "[", "]", ",", ":", "\"", "null", "true", "[]", "{}", "[0,0]", " "];

    [GeneratedRegex("-?[0-9][0-9.eE+-]*")]
    private static partial Regex NumberToken();

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"")]
    private static partial Regex StringToken();

    private static List<byte[]> Seeds(string dir)
    {
        using var scope = torch.NewDisposeScope();
        var seeds = new List<byte[]>();
        string path = Path.Combine(dir, "seed.safetensors");

        SafeTensorsWriter.Write(path,
        [
            new("cube", torch.arange(24, dtype: torch.float32).reshape(2, 3, 4)),
            new("scalar", torch.tensor(1.5f)),
            new("empty", torch.zeros(0, 3)),
            new("i64", torch.tensor(new long[] { 1, -2, 3 })),
            new("i32", torch.tensor(new[] { 4, 5 })),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        seeds.Add(File.ReadAllBytes(path));

        SafeTensorsWriter.Write(path, [new("h", torch.linspace(-3, 3, 10)), new("g", torch.ones(2, 2))], null, SafeTensorsDType.F16);
        seeds.Add(File.ReadAllBytes(path));

        SafeTensorsWriter.Write(path, [new("b", torch.linspace(-3, 3, 9).reshape(3, 3)), new("z", torch.zeros(0))], null, SafeTensorsDType.BF16);
        seeds.Add(File.ReadAllBytes(path));
        return seeds;
    }

    [Fact]
    public void Corrupted_files_open_and_read_or_throw_ModelFormatException_only()
    {
        string dir = TestPaths.NewTempDir();
        List<byte[]> seeds = Seeds(dir);
        string path = Path.Combine(dir, "mutant.safetensors");
        var rng = new Random(20240611);
        int opened = 0, rejected = 0;
        var kinds = new Dictionary<string, int>();

        for (int i = 0; i < Variants; i++)
        {
            byte[] seed = seeds[rng.Next(seeds.Count)];
            (byte[] mutant, string kind) = Mutate(seed, rng);
            kinds[kind] = kinds.GetValueOrDefault(kind) + 1;
            File.WriteAllBytes(path, mutant);
            try
            {
                using var file = SafeTensorsFile.Open(path);
                foreach (string name in file.Tensors.Keys)
                {
                    using var tensor = file.Read(name);
                    Assert.Equal(file.Tensors[name].Shape, tensor.shape);
                }
                opened++;
            }
            catch (ModelFormatException e)
            {
                Assert.Contains(path, e.Message);
                rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"variant {i} ({kind}) threw {e.GetType().Name}: {e.Message}\nheader: {Preview(mutant)}");
            }
        }

        output.WriteLine($"{opened} opened, {rejected} rejected; " + string.Join(", ", kinds.Select(k => $"{k.Key}={k.Value}")));
        Assert.True(opened > Variants / 20, $"only {opened} variants opened; the mutations are too destructive to test reading");
        Assert.True(rejected > Variants / 4, $"only {rejected} variants were rejected");
    }

    private static (byte[] Bytes, string Kind) Mutate(byte[] seed, Random rng)
    {
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(seed);
        int dataStart = 8 + headerLength;
        byte[] bytes = (byte[])seed.Clone();
        switch (rng.Next(8))
        {
            case 0:
                for (int n = rng.Next(1, 6); n > 0; n--) bytes[rng.Next(0, dataStart)] ^= (byte)rng.Next(1, 256);
                return (bytes, "header-flip");
            case 1:
                if (bytes.Length > dataStart)
                    for (int n = rng.Next(1, 6); n > 0; n--) bytes[rng.Next(dataStart, bytes.Length)] ^= (byte)rng.Next(1, 256);
                return (bytes, "data-flip");
            case 2:
                return (bytes[..rng.Next(0, bytes.Length)], "truncate");
            case 3:
            {
                ulong length = rng.Next(4) switch
                {
                    0 => (ulong)rng.NextInt64(),
                    1 => (ulong)rng.Next(0, bytes.Length + 16),
                    2 => (ulong)(headerLength + rng.Next(-8, 9)),
                    _ => ulong.MaxValue - (ulong)rng.Next(0, 16),
                };
                BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
                return (bytes, "header-length");
            }
            case 4:
                return (Rebuild(seed, headerLength, ReplaceToken(Header(seed, headerLength), NumberToken(), Numbers, rng)), "json-number");
            case 5:
                return (Rebuild(seed, headerLength, ReplaceToken(Header(seed, headerLength), StringToken(), Strings, rng)), "json-string");
            case 6:
                return (Rebuild(seed, headerLength, SwapNumbers(Header(seed, headerLength), rng)), "json-swap");
            default:
            {
                string header = Header(seed, headerLength);
                int at = rng.Next(0, header.Length + 1);
                string edited = rng.Next(2) == 0
                    ? header.Insert(at, Fragments[rng.Next(Fragments.Length)])
                    : header.Remove(Math.Min(at, header.Length - 1), 1);
                return (Rebuild(seed, headerLength, edited), "json-edit");
            }
        }
    }

    private static string Header(byte[] seed, int headerLength) => Encoding.UTF8.GetString(seed, 8, headerLength);

    /// <summary>The seed's data behind a new header, with a correct length field.</summary>
    private static byte[] Rebuild(byte[] seed, int headerLength, string header) =>
        RawSafeTensors.Build(header, seed[(8 + headerLength)..]);

    private static string ReplaceToken(string header, Regex token, string[] choices, Random rng)
    {
        MatchCollection matches = token.Matches(header);
        if (matches.Count == 0) return header;
        Match m = matches[rng.Next(matches.Count)];
        return header[..m.Index] + choices[rng.Next(choices.Length)] + header[(m.Index + m.Length)..];
    }

    private static string SwapNumbers(string header, Random rng)
    {
        MatchCollection matches = NumberToken().Matches(header);
        if (matches.Count < 2) return header;
        int a = rng.Next(matches.Count), b = rng.Next(matches.Count);
        if (a == b) return header;
        if (a > b) (a, b) = (b, a);
        Match first = matches[a], second = matches[b];
        return header[..first.Index] + second.Value + header[(first.Index + first.Length)..second.Index] + first.Value + header[(second.Index + second.Length)..];
    }

    private static string Preview(byte[] bytes)
    {
        string text = Encoding.UTF8.GetString(bytes, Math.Min(8, bytes.Length), Math.Max(0, Math.Min(bytes.Length - 8, 300)));
        return text;
    }
}
