using System.Text.Json.Nodes;
using LoraMixer.Tests.Training;

namespace LoraMixer.Tests.Cli;

public sealed class EvalCommandTests
{
    private static string DataDir()
    {
        string dir = TestPaths.NewTempDir();
        Directory.CreateDirectory(Path.Combine(dir, "sst2"));
        Directory.CreateDirectory(Path.Combine(dir, "cola"));
        File.WriteAllLines(Path.Combine(dir, "sst2", "dev.tsv"), new[] { "label\tsentence", "1\ta fine film", "0\ta dull mess", "1\tgood fun", "0\tbad and slow" });
        File.WriteAllLines(Path.Combine(dir, "sst2", "train.tsv"), new[] { "label\tsentence", "1\tgreat", "0\tawful" });
        File.WriteAllLines(Path.Combine(dir, "cola", "in_domain_dev.tsv"), new[] { "src\t1\t\tthe dog barks .", "src\t0\t*\tdog the barks .", "src\t1\t\tit rains ." });
        return dir;
    }

    [Fact]
    public void Eval_scores_sst2_and_cola_and_writes_json()
    {
        string data = DataDir();
        string output = Path.Combine(TestPaths.NewTempDir(), "results.json");
        var run = CliRunner.Run("eval", "--model", TinyDefaultModel.Path_, "--tasks", "sst2,cola", "--data-dir", data, "--out", output);
        Assert.True(run.ExitCode == 0, run.Stderr);
        var json = JsonNode.Parse(File.ReadAllText(output))!;
        var results = json["results"]!.AsArray();
        Assert.Equal(new[] { "sst2", "cola" }, results.Select(r => r!["task"]!.GetValue<string>()));
        Assert.Equal(4, results[0]!["n"]!.GetValue<int>());
        Assert.Equal("mcc", results[1]!["metrics"]![0]!["name"]!.GetValue<string>());
        double acc = results[0]!["metrics"]![0]!["value"]!.GetValue<double>();
        Assert.Contains(acc, new[] { 0.0, 0.25, 0.5, 0.75, 1.0 });
    }

    [Fact]
    public void Eval_refuses_humaneval_without_permission_and_unknown_tasks()
    {
        var humaneval = CliRunner.Run("eval", "--model", TinyDefaultModel.Path_, "--tasks", "humaneval", "--data-dir", DataDir());
        Assert.Equal(1, humaneval.ExitCode);
        Assert.Contains("--allow-code-execution", humaneval.Stderr);
        var unknown = CliRunner.Run("eval", "--model", TinyDefaultModel.Path_, "--tasks", "mmlu", "--data-dir", DataDir());
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("unknown task 'mmlu'", unknown.Stderr);
        var missing = CliRunner.Run("eval", "--model", TinyDefaultModel.Path_, "--tasks", "sst2", "--data-dir", "/nonexistent/data");
        Assert.Equal(1, missing.ExitCode);
        Assert.Single(missing.Stderr.Trim().Split('\n'));
        var samples = CliRunner.Run("eval", "--model", TinyDefaultModel.Path_, "--tasks", "sst2", "--samples", "4", "--data-dir", DataDir());
        Assert.Equal(1, samples.ExitCode);
        Assert.Contains("--samples applies to humaneval only", samples.Stderr);
    }

    [Fact]
    public void Data_prepare_turns_a_benchmark_split_into_labelled_training_lines()
    {
        string output = Path.Combine(TestPaths.NewTempDir(), "sst2.jsonl");
        var run = CliRunner.Run("data", "prepare", "--task", "sst2", "--split", "train", "--data-dir", DataDir(), "--out", output);
        Assert.True(run.ExitCode == 0, run.Stderr);
        var lines = File.ReadAllLines(output).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(2, lines.Length);
        Assert.Equal("great\nQuestion: Is this sentence positive or negative?\nAnswer:", lines[0]["prompt"]!.GetValue<string>());
        Assert.Equal(" positive", lines[0]["response"]!.GetValue<string>());
        Assert.Equal(" negative", lines[1]["response"]!.GetValue<string>());
        Assert.All(lines, l => Assert.Equal("sst2", l["task"]!.GetValue<string>()));
    }
}
