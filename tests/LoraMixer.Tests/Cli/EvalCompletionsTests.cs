using System.IO.Compression;
using System.Text.Json.Nodes;
using LoraMixer.Tests.Evaluation;

namespace LoraMixer.Tests.Cli;

public sealed class EvalCompletionsTests
{
    private static readonly string[] Problems =
    [
        """{"task_id": "T/0", "prompt": "def add(a, b):\n", "canonical_solution": "    return a + b\n", "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n", "entry_point": "add"}""",
        """{"task_id": "T/1", "prompt": "def neg(a):\n", "canonical_solution": "    return -a\n", "test": "def check(candidate):\n    assert candidate(2) == -2\n", "entry_point": "neg"}""",
    ];

    private static string DataDir()
    {
        string dir = TestPaths.NewTempDir();
        Directory.CreateDirectory(Path.Combine(dir, "humaneval"));
        using var gz = new GZipStream(File.Create(Path.Combine(dir, "humaneval", "HumanEval.jsonl.gz")), CompressionLevel.Fastest);
        using var writer = new StreamWriter(gz);
        foreach (string line in Problems) writer.WriteLine(line);
        return dir;
    }

    private static string Completions(params string[] lines)
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "samples.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static CliRunner.Outcome Eval(string completions, params string[] extra) =>
        CliRunner.Run(["eval", "--tasks", "humaneval", "--completions", completions, "--data-dir", DataDir(), "--allow-code-execution",
            "--python", EvalTestData.Python, .. extra]);

    [Fact]
    public void Completions_made_elsewhere_are_scored_without_a_model_with_pass_at_k_and_the_sandbox_recorded()
    {
        string samples = Completions(
            """{"task_id": "T/0", "completion": "    return a + b\n"}""",
            """{"task_id": "T/0", "completion": "    return a - b\n"}""",
            """{"task_id": "T/1", "completion": "    return -a\n"}""",
            """{"task_id": "T/1", "completion": "    import os\n    os.system('true')\n    return -a\n"}""");
        string output = Path.Combine(TestPaths.NewTempDir(), "results.json");
        var run = Eval(samples, "--out", output, "--timeout", "5");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var result = JsonNode.Parse(File.ReadAllText(output))!["results"]![0]!;
        Assert.Equal(2, result["n"]!.GetValue<int>());
        Assert.Equal(2, result["samples"]!.GetValue<int>());
        // T/0: 1 of 2 pass, T/1: 1 of 2 pass (os.system is disabled by the guard) → pass@1 = 0.5.
        Assert.Equal(0.5, result["metrics"]![0]!["value"]!.GetValue<double>(), 6);
        var sandbox = result["sandbox"]!;
        Assert.True(sandbox["guard"]!.GetValue<bool>());
        Assert.Contains(sandbox["rlimits"]!.AsArray(), l => l!.GetValue<string>().StartsWith("RLIMIT_FSIZE=", StringComparison.Ordinal));
        Assert.NotNull(sandbox["pid_namespace"]);
        Assert.NotNull(sandbox["unavailable"]);
        Assert.Contains("sandbox: ", run.Stdout);
    }

    [Fact]
    public void Unknown_task_ids_duplicates_and_bad_lines_are_one_line_errors_naming_file_and_line()
    {
        string unknown = Completions("""{"task_id": "T/0", "completion": "    return a + b\n"}""", """{"task_id": "T/9", "completion": ""}""");
        var run = Eval(unknown);
        Assert.Equal(1, run.ExitCode);
        Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.Contains($"{unknown} line 2: unknown task id 'T/9'", run.Stderr);

        string duplicate = Completions("""{"task_id": "T/0", "completion": "    return a + b\n"}""", """{"task_id": "T/1", "completion": "    return -a\n"}""",
            """{"task_id": "T/0", "completion": "    return a + b\n"}""");
        run = Eval(duplicate);
        Assert.Equal(1, run.ExitCode);
        Assert.Single(run.Stderr.Trim().Split('\n'));
        Assert.Contains($"{duplicate} line 3: duplicate of line 1", run.Stderr);

        string bad = Completions("""{"task_id": "T/0"}""");
        run = Eval(bad);
        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"{bad} line 1: missing \"completion\"", run.Stderr);
    }

    [Fact]
    public void Model_is_required_without_completions_and_refused_with_them()
    {
        var noModel = CliRunner.Run("eval", "--tasks", "humaneval", "--data-dir", DataDir(), "--allow-code-execution");
        Assert.Equal(1, noModel.ExitCode);
        Assert.Contains("--model is required", noModel.Stderr);
        var other = CliRunner.Run("eval", "--tasks", "humaneval,sst2", "--completions", Completions("""{"task_id": "T/0", "completion": ""}"""),
            "--data-dir", DataDir(), "--allow-code-execution");
        Assert.Equal(1, other.ExitCode);
        Assert.Contains("--completions scores humaneval only", other.Stderr);
        var timeout = Eval(Completions("""{"task_id": "T/0", "completion": ""}"""), "--timeout", "0");
        Assert.Equal(1, timeout.ExitCode);
        Assert.Contains("--timeout must be a positive number of seconds", timeout.Stderr);
    }
}
