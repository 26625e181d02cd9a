using System.Text.Json;
using LoraMixer.Tokenization;
using Xunit.Abstractions;

namespace LoraMixer.Tests.Tokenization;

/// <summary>
/// The Llama 2 tokenizer (../shared) against ids from the reference SentencePiece library and from a port of
/// llama2.c's encode(), stored in Fixtures/tokenizers/llama2_ids.json by tests/reference/make_tokenizer_fixtures.py.
/// </summary>
public sealed class Llama2FixtureTests(ITestOutputHelper output)
{
    private sealed record Case(string Text, int[] Ids, int[] IdsWithBos, string Decoded, int[] Llama2cIds);

    private static List<Case> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "tokenizers", "llama2_ids.json")));
        static int[] Ids(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetInt32())];
        return [.. doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("text").GetString()!, Ids(c.GetProperty("ids")), Ids(c.GetProperty("ids_with_bos")),
            c.GetProperty("decoded").GetString()!, Ids(c.GetProperty("llama2c_ids"))))];
    }

    private static string Llama2Folder()
    {
        TestPaths.RequireShared("tokenizers", "llama2", "tokenizer.model");
        return TestPaths.RequireShared("tokenizers", "llama2");
    }

    private static string Show(string text) => JsonSerializer.Serialize(text);

    [Fact]
    public void Fixture_HasAtLeastFortyTexts()
    {
        Assert.True(Cases().Count >= 40);
    }

    [SkippableFact]
    public void TokenizerModel_EncodesEveryFixtureTextToSentencePieceIds()
    {
        string folder = Llama2Folder();
        var tok = TokenizerLoader.Load(Path.Combine(folder, "tokenizer.model"));
        Assert.IsType<SentencePieceTokenizer>(tok);
        var cases = Cases();
        var mismatches = cases.Where(c => !c.Ids.SequenceEqual(tok.Encode(c.Text, addBos: false)))
            .Select(c => $"{Show(c.Text)}: want [{string.Join(",", c.Ids)}] got [{string.Join(",", tok.Encode(c.Text, addBos: false))}]").ToList();
        output.WriteLine($"tokenizer.model: {cases.Count - mismatches.Count}/{cases.Count} texts match SentencePiece exactly");
        Assert.Empty(mismatches);
        foreach (var c in cases) Assert.Equal(c.IdsWithBos, tok.Encode(c.Text));
    }

    [SkippableFact]
    public void TokenizerModel_DecodesEveryFixtureToSentencePieceText()
    {
        string folder = Llama2Folder();
        var tok = TokenizerLoader.Load(Path.Combine(folder, "tokenizer.model"));
        foreach (var c in Cases())
        {
            Assert.Equal(c.Decoded, tok.Decode(c.Ids));
            Assert.Equal(c.Decoded, tok.Decode(c.IdsWithBos));
        }
    }

    [SkippableFact]
    public void TokenizerModel_SpecialIdsAndVocabSize()
    {
        string folder = Llama2Folder();
        var tok = TokenizerLoader.Load(folder);
        Assert.IsType<SentencePieceTokenizer>(tok);
        Assert.Equal((32000, 1, 2), (tok.VocabSize, tok.BosId, tok.EosId));
        // SentencePiece control tokens are invisible; "<s>" typed in text is plain text, not BOS.
        Assert.Equal("Hello", tok.Decode([1, 15043, 2]));
        Assert.DoesNotContain(1, tok.Encode("<s>", addBos: false));
    }

    [SkippableFact]
    public void TokenizerBin_EncodesAsLlama2c_AndEqualsSentencePieceWhereLlama2cDoes()
    {
        string folder = Llama2Folder();
        var tok = TokenizerLoader.Load(Path.Combine(folder, "tokenizer.bin"));
        Assert.IsType<Llama2cTokenizer>(tok);
        var cases = Cases();
        int sameAsSentencePiece = 0;
        foreach (var c in cases)
        {
            var ids = tok.Encode(c.Text, addBos: false);
            Assert.True(c.Llama2cIds.SequenceEqual(ids), $"{Show(c.Text)}: llama2.c [{string.Join(",", c.Llama2cIds)}] got [{string.Join(",", ids)}]");
            if (c.Llama2cIds.SequenceEqual(c.Ids))
            {
                Assert.Equal(c.Ids, ids);
                sameAsSentencePiece++;
            }
            else
            {
                output.WriteLine($"llama2.c differs from SentencePiece on {Show(c.Text)}");
            }
        }
        output.WriteLine($"tokenizer.bin: {sameAsSentencePiece}/{cases.Count} texts give SentencePiece's ids; all {cases.Count} give llama2.c's");
    }

    [SkippableFact]
    public void TokenizerBin_DecodesSentencePieceIdsAfterBos()
    {
        string folder = Llama2Folder();
        var tok = TokenizerLoader.Load(Path.Combine(folder, "tokenizer.bin"));
        foreach (var c in Cases().Where(c => c.Llama2cIds.SequenceEqual(c.Ids) && c.Text == c.Decoded))
            Assert.Equal(c.Text, tok.Decode(c.IdsWithBos));
    }
}
