namespace LoraMixer.Tests.Cli;

public sealed class MambaCliTests
{
    private static string Fixture(string name) => Path.Combine(TestPaths.Fixtures, "models", name);

    [Theory]
    [InlineData("tiny-mamba", "MambaForCausalLM")]
    [InlineData("tiny-falcon-mamba", "FalconMambaForCausalLM")]
    public void Inspect_and_logits_work_on_Mamba_folders(string fixture, string architecture)
    {
        var inspect = CliRunner.Run("inspect", Fixture(fixture));
        Assert.True(inspect.ExitCode == 0, inspect.Stderr);
        Assert.Contains(architecture, inspect.Stdout);
        string output = Path.Combine(TestPaths.NewTempDir(), "logits.npy");
        var logits = CliRunner.Run("logits", "--model", Fixture(fixture), "--ids", "0,5,17", "--out", output);
        Assert.True(logits.ExitCode == 0, logits.Stderr);
        var (data, shape) = LoraMixer.IO.NpyFile.ReadFloat32(output);
        Assert.Equal(new long[] { 3, 128 }, shape);
        Assert.Contains(data, v => v != 0);
    }

    [Fact]
    public void A_Mamba2_folder_is_refused_naming_what_is_supported()
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\"model_type\": \"mamba2\", \"architectures\": [\"Mamba2ForCausalLM\"], \"hidden_size\": 64}");
        foreach (var args in new[] { new[] { "inspect", dir }, new[] { "logits", "--model", dir, "--ids", "1", "--out", Path.Combine(dir, "x.npy") } })
        {
            var run = CliRunner.Run(args);
            Assert.Equal(1, run.ExitCode);
            Assert.Contains("(model_type 'mamba2') is not supported yet; supported: llama (", run.Stderr);
            Assert.Contains("mamba (MambaForCausalLM, FalconMambaForCausalLM)", run.Stderr);
            Assert.Single(run.Stderr.Trim().Split('\n'));
        }
    }
}
