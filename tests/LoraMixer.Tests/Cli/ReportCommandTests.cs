using LoraMixer.Tests.Experiments;

namespace LoraMixer.Tests.Cli;

public sealed class ReportCommandTests
{
    [Fact]
    public void Report_prints_the_main_table_and_the_files_it_wrote()
    {
        string run = ExperimentReportTests.WriteRun();
        var outcome = CliRunner.Run("report", run);
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        Assert.Contains("LoRA-Mixer (joint)", outcome.Stdout);
        Assert.Contains("85.0 ± 7.1", outcome.Stdout);
        Assert.Contains("wrote " + Path.Combine(run, "report", "README.md"), outcome.Stdout);
        Assert.True(File.Exists(Path.Combine(run, "report", "index.html")));
        Assert.True(File.Exists(Path.Combine(run, "report", "scores.png")));
    }

    [Fact]
    public void A_missing_or_empty_run_folder_is_a_one_line_error()
    {
        var missing = CliRunner.Run("report", "/no/such/run");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("/no/such/run", missing.Stderr);
        Assert.Single(missing.Stderr.Trim().Split('\n'));

        string empty = TestPaths.NewTempDir();
        var none = CliRunner.Run("report", empty, "--out", Path.Combine(empty, "r"));
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("seed-<s>/results/<method>.json", none.Stderr);
        Assert.Single(none.Stderr.Trim().Split('\n'));
    }
}
