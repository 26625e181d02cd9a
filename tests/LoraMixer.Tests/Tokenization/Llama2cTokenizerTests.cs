using LoraMixer.Errors;
using LoraMixer.Tokenization;
using Xunit.Abstractions;

namespace LoraMixer.Tests.Tokenization;

public sealed class Llama2cTokenizerTests(ITestOutputHelper output)
{
    private static string Tok512() => TestPaths.RequireShared("models", "stories260K", "tok512.bin");

    [SkippableFact]
    public void Tok512_EncodesOnceUponATime_AndDecodesItBack()
    {
        string path = Tok512();
        var tok = TokenizerLoader.Load(path);
        Assert.IsType<Llama2cTokenizer>(tok);
        Assert.Equal((512, 1, 2), (tok.VocabSize, tok.BosId, tok.EosId));
        var ids = tok.Encode("Once upon a time");
        output.WriteLine(string.Join(",", ids));
        Assert.Equal(1, ids[0]);
        Assert.True(ids.Count < "Once upon a time".Length, "merges should shorten the byte-level sequence");
        Assert.Equal("Once upon a time", tok.Decode(ids));
        // Without BOS run.c's decode keeps the dummy-prefix space.
        Assert.Equal(" Once upon a time", tok.Decode(ids.Skip(1).ToArray()));
    }

    [SkippableFact]
    public void Tok512_FallsBackToBytesForCharactersOutsideTheVocab()
    {
        string path = Tok512();
        var tok = TokenizerLoader.Load(path);
        var ids = tok.Encode("猫", addBos: false);
        // 猫 = E7 8C AB, none of which merges in a 512-token English vocabulary: byte ids are byte + 3.
        Assert.Equal([0xE7 + 3, 0x8C + 3, 0xAB + 3], ids.Skip(1));
        Assert.Equal(" 猫", tok.Decode(ids));
    }

    [Fact]
    public void HandWrittenBin_MergesHighestScoreFirst()
    {
        // <unk> <s> </s>, 256 byte tokens, then " " (259), "a" (260), "b" (261), " a" (262, score -2),
        // "ab" (263, score -1), " ab" (264, score -3). For "ab": " ", a, b -> "ab" (-1) beats " a" (-2),
        // then " "+"ab" = " ab" (-3).
        var tokens = new List<(string, float)> { ("<unk>", 0), ("\n<s>\n", 0), ("\n</s>\n", 0) };
        for (int b = 0; b < 256; b++) tokens.Add(($"<0x{b:X2}>", 0));
        tokens.AddRange([(" ", -1e9f), ("a", -10), ("b", -11), (" a", -2), ("ab", -1), (" ab", -3)]);
        string path = WriteBin(tokens);
        var tok = TokenizerLoader.Load(path);
        Assert.Equal([1, 264], tok.Encode("ab"));
        // "c" is not a token: it falls back to byte 'c' + 3 and " a" still merges.
        Assert.Equal([1, 262, 3 + 'c'], tok.Encode("ac"));
        Assert.Equal("ab", tok.Decode([1, 264]));
        Assert.Equal("\n<s>\nab", tok.Decode([1, 264], skipSpecialTokens: false));
    }

    [Fact]
    public void TruncatedBin_ThrowsModelFormatException()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "tokenizer.bin");
        File.WriteAllBytes(path, [8, 0, 0, 0, 0, 0, 0x80, 0x3F, 100, 0, 0, 0, (byte)'a']);
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(path));
        Assert.Contains("tokenizer.bin", e.Message);
    }

    internal static string WriteBin(IEnumerable<(string Piece, float Score)> tokens)
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "tokenizer.bin");
        using var writer = new BinaryWriter(File.Create(path));
        var list = tokens.ToList();
        writer.Write(list.Max(t => System.Text.Encoding.UTF8.GetByteCount(t.Piece)));
        foreach (var (piece, score) in list)
        {
            byte[] bytes = System.Text.Encoding.UTF8.GetBytes(piece);
            writer.Write(score);
            writer.Write(bytes.Length);
            writer.Write(bytes);
        }
        return path;
    }
}
