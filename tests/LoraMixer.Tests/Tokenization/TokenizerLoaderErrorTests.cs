using LoraMixer.Errors;
using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Tokenization;

public sealed class TokenizerLoaderErrorTests
{
    [Fact]
    public void MissingPath_ThrowsListingAcceptedFiles()
    {
        string missing = Path.Combine(TestPaths.NewTempDir(), "no-such-model");
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(missing));
        Assert.Contains("no-such-model", e.Message);
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("tokenizer.model", e.Message);
        Assert.Contains("tokenizer.bin", e.Message);
    }

    [Fact]
    public void FolderWithoutTokenizerFiles_ThrowsListingAcceptedFiles()
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "config.json"), "{}");
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(dir));
        Assert.Contains(dir, e.Message);
        Assert.Contains("tokenizer.json, tokenizer.model or tokenizer.bin", e.Message);
    }

    [Theory]
    [InlineData("{ \"model\": { \"type\": \"BPE\", ")]
    [InlineData("[1, 2, 3]")]
    [InlineData("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}")]
    [InlineData("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}")]
    public void CorruptTokenizerJson_ThrowsNamingTheFile(string content)
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), content);
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(dir));
        Assert.Contains(Path.Combine(dir, "tokenizer.json"), e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void CorruptTokenizerModel_ThrowsNamingTheFile()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "tokenizer.model");
        File.WriteAllText(path, "this is not a protobuf");
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(path));
        Assert.Contains("tokenizer.model", e.Message);
    }

    [Fact]
    public void UnknownFileType_ThrowsListingAcceptedFiles()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "model.safetensors");
        File.WriteAllText(path, "x");
        var e = Assert.Throws<ModelFormatException>(() => TokenizerLoader.Load(path));
        Assert.Contains("tokenizer.json", e.Message);
    }

    [Fact]
    public void FolderPrefersTokenizerJsonOverModelAndBin()
    {
        string dir = TinyTokenizerFiles.WriteFolder(TinyTokenizerFiles.Gpt2Style());
        File.WriteAllText(Path.Combine(dir, "tokenizer.model"), "not read");
        File.WriteAllText(Path.Combine(dir, "tokenizer.bin"), "not read");
        Assert.IsType<HuggingFaceTokenizer>(TokenizerLoader.Load(dir));
    }
}
