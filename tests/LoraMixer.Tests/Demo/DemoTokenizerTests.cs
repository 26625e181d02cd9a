using LoraMixer.Demo;
using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Demo;

public sealed class DemoTokenizerTests
{
    private static ITokenizer LoadDemoTokenizer()
    {
        string dir = TestPaths.NewTempDir();
        DemoTokenizer.WriteFiles(dir);
        return TokenizerLoader.Load(dir);
    }

    [Fact]
    public void Vocabulary_is_specials_newline_space_then_printable_ascii()
    {
        var v = DemoTokenizer.Vocabulary;
        Assert.Equal(DemoTokenizer.VocabSize, v.Count);
        Assert.Equal(["<unk>", "<s>", "</s>", "<pad>", "\n", " ", "!"], v.Take(7));
        Assert.Equal("~", v[^1]);
        Assert.Equal(v.Count, v.Distinct().Count());
    }

    [Fact]
    public void Loaded_tokenizer_has_the_declared_size_and_special_ids_and_prepends_bos()
    {
        var tok = LoadDemoTokenizer();
        Assert.Equal(100, tok.VocabSize);
        Assert.Equal(DemoTokenizer.BosId, tok.BosId);
        Assert.Equal(DemoTokenizer.EosId, tok.EosId);
        Assert.Equal((1, 2), (DemoTokenizer.BosId, DemoTokenizer.EosId));
        Assert.Equal([1, 4 + 2 + ('Q' - '!'), 4 + 2 + (':' - '!'), 5, 4], tok.Encode("Q: \n", addBos: true));
        Assert.Equal([4 + 2 + ('a' - '!')], tok.Encode("a", addBos: false));
        Assert.Equal("</s>", tok.Decode([DemoTokenizer.EosId], skipSpecialTokens: false));
        Assert.Equal("ab", tok.Decode([1, 4 + 2 + ('a' - '!'), 4 + 2 + ('b' - '!'), 2, 3]));
    }

    [Fact]
    public void Every_demo_item_and_corpus_document_round_trips_one_token_per_character()
    {
        var tok = LoadDemoTokenizer();
        var texts = DemoSuite.Tasks.SelectMany(t => DemoSuite.Generate(t.Name, 300, seed: 2)).Select(i => i.Prompt + i.Response)
            .Concat(PretrainingCorpus.Generate(1000, seed: 2))
            .Append(string.Concat(DemoTokenizer.Vocabulary.Skip(4)));
        foreach (string text in texts)
        {
            var ids = tok.Encode(text, addBos: false);
            Assert.Equal(text.Length, ids.Count);
            Assert.All(ids, id => Assert.InRange(id, 4, DemoTokenizer.VocabSize - 1));
            Assert.Equal(text, tok.Decode(ids));
            Assert.Equal(text, tok.Decode([DemoTokenizer.BosId, .. ids, DemoTokenizer.EosId]));
        }
    }

    [Fact]
    public void Characters_outside_the_vocabulary_become_unk()
    {
        var tok = LoadDemoTokenizer();
        Assert.Equal([DemoTokenizer.UnkId], tok.Encode("é", addBos: false));
    }
}
