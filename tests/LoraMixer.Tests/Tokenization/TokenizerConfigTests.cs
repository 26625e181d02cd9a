using LoraMixer.Errors;
using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Tokenization;

public sealed class TokenizerConfigTests
{
    [Fact]
    public void TokenizerConfig_TokensAsObjectOrString_GiveBosAndEos()
    {
        string dir = TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Gpt2Style(), tokenizerConfig: """
            {
              "bos_token": {"__type": "AddedToken", "content": "<|im_start|>", "lstrip": false, "normalized": false},
              "eos_token": "<|endoftext|>",
              "add_bos_token": true
            }
            """);
        var tok = TokenizerLoader.Load(dir);
        Assert.Equal((267, 266), (tok.BosId, tok.EosId));
        // add_bos_token true with no template: BOS comes from bos_token.
        Assert.Equal([267, 259], tok.Encode("hello"));
        Assert.Equal([259], tok.Encode("hello", addBos: false));
    }

    [Fact]
    public void TokenizerConfig_AddBosTokenFalse_OverridesTemplate()
    {
        string dir = TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.SentencePieceStyle(),
            tokenizerConfig: """{"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false}""");
        var tok = TokenizerLoader.Load(dir);
        Assert.Equal((1, 2), (tok.BosId, tok.EosId));
        Assert.Equal([266], tok.Encode("hi"));
    }

    [Fact]
    public void ConfigJson_IdsAreTheFallback_AndAnEosListGivesItsFirstId()
    {
        string dir = TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Gpt2Style(),
            config: """{"model_type": "llama", "bos_token_id": 267, "eos_token_id": [266, 33]}""");
        var tok = TokenizerLoader.Load(dir);
        Assert.Equal((267, 266), (tok.BosId, tok.EosId));
        // config.json says nothing about adding BOS and the template adds none.
        Assert.Equal([259], tok.Encode("hello"));
    }

    [Fact]
    public void TokenizerConfig_WinsOverConfigJson()
    {
        string dir = TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.SentencePieceStyle(),
            tokenizerConfig: """{"eos_token": "</s>"}""",
            config: """{"bos_token_id": 1, "eos_token_id": 0}""");
        var tok = TokenizerLoader.Load(dir);
        Assert.Equal((1, 2), (tok.BosId, tok.EosId));
    }

    [Fact]
    public void FileLoadedDirectly_ReadsTheConfigsBesideIt()
    {
        string dir = TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Gpt2Style(), tokenizerConfig: """{"eos_token": "<|endoftext|>"}""");
        Assert.Equal(266, TokenizerLoader.Load(Path.Combine(dir, "tokenizer.json")).EosId);
    }

    [Fact]
    public void MalformedTokenizerConfig_ThrowsNamingTheFile()
    {
        string dir = TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Gpt2Style(), tokenizerConfig: "{ \"eos_token\": ");
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(dir));
        Assert.Contains("tokenizer_config.json", e.Message);
    }
}
