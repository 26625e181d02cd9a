using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Tokenization;

public sealed class ByteLevelBpeTests
{
    // Gpt2Style ids: bytes 0..255, he 256, ll 257, hell 258, hello 259, Ġw 260, or 261, Ġwor 262, ld 263,
    // Ġworld 264, Ã© 265, <|endoftext|> 266, <|im_start|> 267.
    private static ITokenizer Gpt2(bool mergesAsArrays = false) =>
        TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Gpt2Style(mergesAsArrays)));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Encode_AppliesMergesByRank_WithStringOrArrayMerges(bool mergesAsArrays)
    {
        var tok = Gpt2(mergesAsArrays);
        // GPT-2 regex: "hello" | " world" | "!". "hello": h+e (rank 0), l+l (1), he+ll (2), hell+o (3) -> 259.
        // "Ġworld": Ġ+w (4), o+r (5), Ġw+or (6), l+d (7), Ġwor+ld (8) -> 264. "!" is byte 0x21 = 33.
        Assert.Equal([259, 264, 33], tok.Encode("hello world!"));
        Assert.Equal("hello world!", tok.Decode([259, 264, 33]));
    }

    [Fact]
    public void Encode_LowerRankMergeWinsOverLeftmostPosition()
    {
        // "ell": e+l has no merge, l+l (rank 1) applies -> e, ll.
        Assert.Equal(['e', 257], Gpt2().Encode("ell"));
    }

    [Fact]
    public void Encode_MultiByteCharacters_UseByteAlphabetAndMerges()
    {
        var tok = Gpt2();
        // é is C3 A9 -> "Ã©" (merge 9) -> 265; 😀 is F0 9F 98 80 with no merges -> four byte ids.
        Assert.Equal([265], tok.Encode("é"));
        Assert.Equal([0xF0, 0x9F, 0x98, 0x80], tok.Encode("😀"));
        Assert.Equal("é😀", tok.Decode([265, 0xF0, 0x9F, 0x98, 0x80]));
    }

    [Fact]
    public void Encode_SplitsAddedTokensOutOfTextBeforeBpe()
    {
        var tok = Gpt2();
        Assert.Equal([267, 259, 264, 266], tok.Encode("<|im_start|>hello world<|endoftext|>"));
        // A partial special token is plain text: '<' '|' 'i' 'm' are bytes.
        Assert.Equal(['<', '|', 'i', 'm'], tok.Encode("<|im"));
    }

    [Fact]
    public void Decode_SkipsSpecialTokensOnlyWhenAsked()
    {
        var tok = Gpt2();
        int[] ids = [267, 259, 266];
        Assert.Equal("hello", tok.Decode(ids));
        Assert.Equal("<|im_start|>hello<|endoftext|>", tok.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void Encode_WithoutPostProcessorTemplate_AddsNoBos()
    {
        var tok = Gpt2();
        Assert.Null(tok.BosId);
        Assert.Equal([259], tok.Encode("hello", addBos: true));
    }

    [Fact]
    public void Llama3Regex_SplitsNumbersInThreesAndContractionsCaseInsensitively()
    {
        // "3 4" ranks before "4 5": without the \p{N}{1,3} split "12345" would merge 3+4; split as "123"|"45"
        // only 4+5 can merge. "I '" would merge "I'" unless the (?i:'m) branch splits "I" | "'M".
        var tok = TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Llama3Style(
            [("3", "4"), ("4", "5"), ("I", "'"), ("'", "M"), ("Ċ", "Ċ")])));
        // New ids: 34 256, 45 257, I' 258, 'M 259, ĊĊ 260.
        Assert.Equal(['1', '2', '3', 257], tok.Encode("12345"));
        Assert.Equal(['I', 259], tok.Encode("I'M"));
        // "'x" is one piece ([^\r\n\p{L}\p{N}]?\p{L}+), so "I" and "'" never meet and I+' does not merge.
        Assert.Equal(['I', '\'', 'x'], tok.Encode("I'x"));
        Assert.Equal(['o', 'k', 260], tok.Encode("ok\n\n"));
        Assert.Equal("12345 I'M ok\n\n", tok.Decode(tok.Encode("12345 I'M ok\n\n")));
    }

    [Fact]
    public void Llama3Regex_TreatsLettersOutsideTheBmpAsLetters()
    {
        // U+20000 (CJK Ext. B, a letter) is F0 A0 80 80 and 'ð' is byte F0. Oniguruma matches "a𠀀" as one
        // \p{L}+ piece, so a+ð merges; UTF-16 surrogates must not break the piece in two.
        var tok = TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Llama3Style([("a", "ð")])));
        Assert.Equal([256, 0xA0, 0x80, 0x80], tok.Encode("a\U00020000"));
        // An emoji is a symbol, not a letter: "a" and "😀" are separate pieces, so nothing merges.
        Assert.Equal(['a', 0xF0, 0x9F, 0x98, 0x80], tok.Encode("a😀"));
    }

    [Fact]
    public void Llama3Style_IgnoreMerges_UsesWholeWordFromVocab()
    {
        // bc 256, ab 257, abc 258. By merges "abc" would end as a, bc (b+c ranks first and a+bc is no merge);
        // with ignore_merges a pre-token that is itself a vocab entry is taken whole.
        var tok = TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Llama3Style(
            [("b", "c"), ("a", "b"), ("ab", "c")])));
        Assert.Equal([258], tok.Encode("abc"));
        Assert.Equal(['a', 256, 'x'], tok.Encode("abcx"));
    }

    [Fact]
    public void SplitPattern_WithPossessiveQuantifiers_IsAccepted()
    {
        var json = TinyTokenizerFiles.ByteLevel([("a", "a")], new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = "Split",
            ["pattern"] = new System.Text.Json.Nodes.JsonObject { ["Regex"] = @"\p{L}++|[^\p{L}]++" },
            ["behavior"] = "Isolated",
            ["invert"] = false,
        });
        // No ByteLevel step: the pieces stay plain text, so "aa" merges and "1" is byte '1'.
        var tok = TokenizerLoader.Load(TinyTokenizerFiles.WriteFolder(json));
        Assert.Equal([256, '1'], tok.Encode("aa1"));
    }
}
