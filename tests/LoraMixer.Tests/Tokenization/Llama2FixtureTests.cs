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

    private string? Llama2Folder()
    {
        string? shared = TestPaths.Shared;
        string? folder = shared is null ? null : Path.Combine(shared, "tokenizers", "llama2");
        if (folder is null || !File.Exists(Path.Combine(folder, "tokenizer.model")))
        {
            output.WriteLine("SKIPPED: ../shared/tokenizers/llama2 is not available beside the repository.");
            return null;
        }
        return folder;
    }

    private static string Show(string text) => JsonSerializer.Serialize(text);

    [Fact]
    public void Fixture_HasAtLeastFortyTexts()
    {
        Assert.True(Cases().Count >= 40);
    }

    [Fact]
    public void TokenizerModel_EncodesEveryFixtureTextToSentencePieceIds()
    {
        if (Llama2Folder() is not { } folder) return;
        var tok = TokenizerLoader.Load(Path.Combine(folder, "tokenizer.model"));
        Assert.IsType<SentencePieceTokenizer>(tok);
        var cases = Cases();
        var mismatches = cases.Where(c => !c.Ids.SequenceEqual(tok.Encode(c.Text, addBos: false)))
            .Select(c => $"{Show(c.Text)}: want [{string.Join(",", c.Ids)}] got [{string.Join(",", tok.Encode(c.Text, addBos: false))}]").ToList();
        output.WriteLine($"tokenizer.model: {cases.Count - mismatches.Count}/{cases.Count} texts match SentencePiece exactly");
        Assert.Empty(mismatches);
        foreach (var c in cases) Assert.Equal(c.IdsWithBos, tok.Encode(c.Text));
    }

    [Fact]
    public void TokenizerModel_DecodesEveryFixtureToSentencePieceText()
    {
        if (Llama2Folder() is not { } folder) return;
        var tok = TokenizerLoader.Load(Path.Combine(folder, "tokenizer.model"));
        foreach (var c in Cases())
        {
            Assert.Equal(c.Decoded, tok.Decode(c.Ids));
            Assert.Equal(c.Decoded, tok.Decode(c.IdsWithBos));
        }
    }

    [Fact]
    public void TokenizerModel_SpecialIdsAndVocabSize()
    {
        if (Llama2Folder() is not { } folder) return;
        var tok = TokenizerLoader.Load(folder);
        Assert.IsType<SentencePieceTokenizer>(tok);
        Assert.Equal((32000, 1, 2), (tok.VocabSize, tok.BosId, tok.EosId));
        // SentencePiece control tokens are invisible; "<s>" typed in text is plain text, not BOS.
        Assert.Equal("Hello", tok.Decode([1, 15043, 2]));
        Assert.DoesNotContain(1, tok.Encode("<s>", addBos: false));
    }

    [Fact]
    public void TokenizerBin_EncodesAsLlama2c_AndEqualsSentencePieceWhereLlama2cDoes()
    {
        if (Llama2Folder() is not { } folder) return;
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

    [Fact]
    public void TokenizerBin_DecodesSentencePieceIdsAfterBos()
    {
        if (Llama2Folder() is not { } folder) return;
        var tok = TokenizerLoader.Load(Path.Combine(folder, "tokenizer.bin"));
        foreach (var c in Cases().Where(c => c.Llama2cIds.SequenceEqual(c.Ids) && c.Text == c.Decoded))
            Assert.Equal(c.Text, tok.Decode(c.IdsWithBos));
    }
}
