using System.Text;
using System.Text.Json;
using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Tokenization;

public sealed class StreamingDecoderTests
{
    private static (List<string> Chunks, string Text) Stream(ITokenizer tok, IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        var decoder = new StreamingDecoder(tok, skipSpecialTokens);
        var chunks = ids.Select(decoder.Push).ToList();
        chunks.Add(decoder.Flush());
        return (chunks, string.Concat(chunks));
    }

    [Fact]
    public void ByteFallbackEmojiAndCjk_NeverYieldReplacementChar_AndConcatenateToDecode()
    {
        var tok = TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.SentencePieceStyle()));
        // Family emoji (ZWJ sequence), a flag and CJK: all byte-fallback tokens in this tiny vocabulary.
        var ids = tok.Encode("hi 👨\u200d👩\u200d👧 🇯🇵 中文 there");
        Assert.Contains(3 + 0xF0, ids);
        var (chunks, text) = Stream(tok, ids);
        Assert.All(chunks, c => Assert.DoesNotContain('\uFFFD', c));
        Assert.Equal(tok.Decode(ids), text);
        Assert.Equal("hi 👨\u200d👩\u200d👧 🇯🇵 中文 there", text);
        // The four bytes of 👨 come out together, on the fourth.
        int first = ids.ToList().IndexOf(3 + 0xF0);
        Assert.Equal(["", "", "", "👨"], chunks.Skip(first).Take(4));
    }

    [Fact]
    public void ByteLevelTokens_HoldBackPartialCharacters()
    {
        var tok = TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Gpt2Style()));
        var (chunks, text) = Stream(tok, [259, 0xF0, 0x9F, 0x98, 0x80, 264]);
        Assert.Equal(["hello", "", "", "", "😀", " world", ""], chunks);
        Assert.Equal("hello😀 world", text);
    }

    [Fact]
    public void LeadingSpaceOfFirstPiece_IsDroppedOnceAsInDecode()
    {
        var tok = TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.SentencePieceStyle()));
        var (chunks, text) = Stream(tok, [1, 266, 271]);
        Assert.Equal(["", "hi", " there", ""], chunks);
        Assert.Equal(tok.Decode([1, 266, 271]), text);
    }

    [Fact]
    public void StrayByte_IsReplacedAtTheSamePlaceAsDecode()
    {
        var tok = TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.SentencePieceStyle()));
        // <0xE4> then "▁hi": an incomplete character that never completes.
        int[] ids = [3 + 0xE4, 266, 3 + 0xE4];
        var (chunks, text) = Stream(tok, ids);
        Assert.Equal(tok.Decode(ids), text);
        Assert.Equal("\uFFFD hi\uFFFD", text);
        Assert.Equal("", chunks[0]);
    }

    [Fact]
    public void RandomIdSequences_ConcatenateToDecode()
    {
        var random = new Random(1234);
        var json = TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.SentencePieceStyle()));
        var bytes = TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Gpt2Style()));
        foreach (var tok in new[] { json, bytes })
        {
            for (int round = 0; round < 200; round++)
            {
                var ids = Enumerable.Range(0, random.Next(0, 12)).Select(_ => random.Next(tok.VocabSize)).ToArray();
                foreach (bool skip in new[] { true, false })
                    Assert.Equal(tok.Decode(ids, skip), Stream(tok, ids, skip).Text);
            }
        }
    }

    [SkippableFact]
    public void Llama2Model_StreamsEveryFixtureTextWithoutBrokenCharacters()
    {
        string folder = TestPaths.RequireShared("tokenizers", "llama2");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "tokenizers", "llama2_ids.json")));
        foreach (string file in new[] { "tokenizer.model", "tokenizer.bin" })
        {
            var tok = TokenizerLoader.Load(Path.Combine(folder, file));
            foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
            {
                int[] ids = [.. c.GetProperty("ids_with_bos").EnumerateArray().Select(x => x.GetInt32())];
                var (chunks, text) = Stream(tok, ids);
                Assert.Equal(tok.Decode(ids), text);
                Assert.All(chunks, chunk => Assert.DoesNotContain('\uFFFD', chunk));
            }
        }
    }

    [Fact]
    public void OtherTokenizers_AreStreamedByRedecoding()
    {
        var tok = new CharTokenizer();
        var (chunks, text) = Stream(tok, [.. Encoding.UTF8.GetBytes("a€b")]);
        Assert.Equal("a€b", text);
        Assert.All(chunks, c => Assert.DoesNotContain('\uFFFD', c));
    }

    /// <summary>An outside ITokenizer whose ids are raw UTF-8 bytes.</summary>
    private sealed class CharTokenizer : ITokenizer
    {
        public int VocabSize => 256;
        public int? BosId => null;
        public int? EosId => null;
        public IReadOnlyList<int> Encode(string text, bool addBos = true) => [.. Encoding.UTF8.GetBytes(text)];
        public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true) => Encoding.UTF8.GetString([.. ids.Select(i => (byte)i)]);
    }
}
