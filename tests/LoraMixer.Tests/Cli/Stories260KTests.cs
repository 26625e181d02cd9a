namespace LoraMixer.Tests.Cli;

public sealed class Stories260KTests
{
    // Documented greedy continuation of llama2.c's stories260K from BOS (../shared/models/stories260K/SOURCE.md).
    private const string Known = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

    [SkippableFact]
    public void Convert_then_greedy_generate_reproduces_the_documented_story()
    {
        string source = TestPaths.RequireShared("models", "stories260K");
        string output = Path.Combine(TestPaths.NewTempDir(), "stories260K");

        var convert = CliRunner.Run("convert", "llama2c", Path.Combine(source, "stories260K.bin"),
            "--tokenizer", Path.Combine(source, "tok512.bin"), "--out", output);
        Assert.True(convert.ExitCode == 0, convert.Stderr);

        var generate = CliRunner.Run("generate", "--model", output, "--prompt", "", "--max-tokens", "40");
        Assert.True(generate.ExitCode == 0, generate.Stderr);
        Assert.StartsWith(Known, generate.Stdout.TrimStart());
    }
}
