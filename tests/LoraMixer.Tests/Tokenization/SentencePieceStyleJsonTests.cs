using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Tokenization;

public sealed class SentencePieceStyleJsonTests
{
    // Ids: <unk> 0, <s> 1, </s> 2, <0xXX> 3 + XX, ▁ 259, h 260, i 261, t 262, e 263, r 264, ▁h 265, ▁hi 266,
    // ▁t 267, he 268, ▁the 269, re 270, ▁there 271.
    private static ITokenizer Load() => TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.SentencePieceStyle()));

    [Fact]
    public void Encode_PrependsMetaSpace_MergesByRank_AndAddsBosFromTemplate()
    {
        var tok = Load();
        // "▁hi▁there": ▁+h, ▁h+i -> ▁hi; ▁+t, h+e, ▁t+he, r+e, ▁the+re -> ▁there.
        Assert.Equal([1, 266, 271], tok.Encode("hi there"));
        Assert.Equal([266, 271], tok.Encode("hi there", addBos: false));
        Assert.Equal(1, tok.BosId);
    }

    [Fact]
    public void Encode_FallsBackToUtf8ByteTokens()
    {
        // 中 = E4 B8 AD -> <0xE4> <0xB8> <0xAD> = 3 + byte.
        Assert.Equal([266, 259, 3 + 0xE4, 3 + 0xB8, 3 + 0xAD], Load().Encode("hi 中", addBos: false));
    }

    [Fact]
    public void Decode_JoinsByteTokens_AndStripsOneLeadingSpace()
    {
        var tok = Load();
        Assert.Equal("hi 中", tok.Decode([1, 266, 259, 3 + 0xE4, 3 + 0xB8, 3 + 0xAD]));
        // Strip(" ", 1, 0) removes one space of the whole text, so a second leading space survives.
        Assert.Equal(" hi", tok.Decode([259, 266]));
        Assert.Equal("<s> hi", tok.Decode([1, 266], skipSpecialTokens: false));
    }

    [Fact]
    public void Encode_MatchesSpecialTokensInText_NormalizingEachSideSeparately()
    {
        var tok = Load();
        // tokenizers splits "<s>" out first, then normalizes "hi" alone: ▁hi.
        Assert.Equal([1, 266], tok.Encode("<s>hi", addBos: false));
        // "hi " -> ▁hi▁ ; "</s>" ; " there" -> Prepend gives ▁▁there -> ▁, ▁there.
        Assert.Equal([266, 259, 2, 259, 271], tok.Encode("hi </s> there", addBos: false));
    }

    [Fact]
    public void Encode_EmptyText_GivesOnlyBos()
    {
        var tok = Load();
        Assert.Equal([1], tok.Encode(""));
        Assert.Empty(tok.Encode("", addBos: false));
    }

    [Fact]
    public void Decode_IdsOutsideTheVocabulary_DecodeToNothing()
    {
        var tok = Load();
        Assert.Equal("hi", tok.Decode([266, tok.VocabSize, tok.VocabSize + 100, -1]));
    }
}
