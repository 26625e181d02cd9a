namespace LoraMixer.Tests.Cli;

public sealed class ExperimentCommandTests
{
    [Fact]
    public void A_missing_or_bad_recipe_is_a_one_line_error_and_leaves_no_run_folder()
    {
        string dir = TestPaths.NewTempDir();
        string runDir = Path.Combine(dir, "run");
        var missing = CliRunner.Run("experiment", "run", Path.Combine(dir, "nope.json"), "--out", runDir);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("nope.json", missing.Stderr);
        Assert.Single(missing.Stderr.Trim().Split('\n'));

        string recipe = Path.Combine(dir, "r.json");
        File.WriteAllText(recipe, """{"name": "r", "tasks": ["add", "sort"], "methods": ["base", "lora-mixer"]}""");
        var bad = CliRunner.Run("experiment", "run", recipe, "--out", runDir);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("unknown method 'lora-mixer'", bad.Stderr);
        Assert.Single(bad.Stderr.Trim().Split('\n'));

        File.WriteAllText(recipe, """{"name": "r", "tasks": ["add", "sort"], "methods": ["base"]}""");
        var badSeeds = CliRunner.Run("experiment", "run", recipe, "--out", runDir, "--seeds", "0,x");
        Assert.Equal(1, badSeeds.ExitCode);
        Assert.Contains("--seeds", badSeeds.Stderr);
        Assert.False(Directory.Exists(runDir), "nothing may be written before the recipe is valid");
    }
}
