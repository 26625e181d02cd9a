using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Lora;
using LoraMixer.Tests.Training;

namespace LoraMixer.Tests.Cli;

/// <summary>
/// Through the built tool: plug-and-play keeps whole adapters (and says what an explicit --targets drops),
/// every --out is checked before work starts and claimed against concurrent runs, and messages stay one line.
/// </summary>
public sealed class IntegrityCommandTests
{
    private static readonly string Root = TestPaths.NewTempDir();

    private static readonly Lazy<string> Data = new(() =>
    {
        string path = Path.Combine(Root, "data.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, 8).SelectMany(i => new[]
        {
            JsonSerializer.Serialize(new Dictionary<string, string> { ["prompt"] = $"add {i} 1:", ["response"] = $" {i + 1}", ["task"] = "math" }),
            JsonSerializer.Serialize(new Dictionary<string, string> { ["prompt"] = $"say {i}:", ["response"] = $" hi {i}", ["task"] = "chat" }),
        }));
        return path;
    });

    private static readonly Lazy<string> FullAdapter = new(() => Adapter("full", "q_proj,v_proj,gate_proj,up_proj,down_proj"));
    private static readonly Lazy<string> QvAdapter = new(() => Adapter("qv", "q_proj,v_proj"));

    [Fact]
    public void Plug_and_play_mixes_every_module_of_the_adapters_and_names_what_an_explicit_targets_drops()
    {
        string union = Path.Combine(Root, "union");
        var run = Train(union);
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.DoesNotContain("leave out", run.Stdout);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(union, "mixer_config.json")))!;
        Assert.Equal(["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"], config["targets"]!.AsArray().Select(t => t!.GetValue<string>()));
        using (var saved = PeftAdapter.Load(Path.Combine(union, "experts", "full")))
        using (var original = PeftAdapter.Load(FullAdapter.Value))
            Assert.Equal(original.Modules.Keys, saved.Modules.Keys);

        string narrow = Path.Combine(Root, "narrow");
        var dropping = Train(narrow, "--targets", "q_proj,v_proj");
        Assert.True(dropping.ExitCode == 0, dropping.Stderr);
        var line = Assert.Single(dropping.Stdout.Split('\n'), l => l.Contains("leave out"));
        Assert.Contains("full: gate_proj, up_proj, down_proj", line);
        Assert.DoesNotContain("qv:", line);
        using (var saved = PeftAdapter.Load(Path.Combine(narrow, "experts", "full")))
        {
            Assert.Equal(["q_proj", "v_proj"], saved.Config.TargetModules);
            Assert.All(saved.Modules.Keys, m => Assert.Contains("self_attn", m));
        }
        var logits = CliRunner.Run("logits", "--model", TinyDefaultModel.Path_, "--mixer", narrow, "--ids", "1,5,9", "--out", Path.Combine(Root, "narrow.npy"));
        Assert.True(logits.ExitCode == 0, logits.Stderr);
    }

    [Fact]
    public void A_run_into_an_output_another_run_holds_fails_fast_and_leaves_it_intact()
    {
        string dir = Path.Combine(Root, "held");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "train_log.jsonl"), "{}\n");
        using (OutputLockTests.HoldInAnotherProcess(dir + ".lock"))
        {
            var run = CliRunner.Run("lora", "train", "--model", TinyDefaultModel.Path_, "--data", Data.Value, "--out", dir, "--max-steps", "1");
            AssertOneLineError(run, $"--out {dir} is being written by another run");
        }
        Assert.Equal("{}\n", File.ReadAllText(Path.Combine(dir, "train_log.jsonl")));

        string mixer = Path.Combine(Root, "held-mixer");
        using (OutputLockTests.HoldInAnotherProcess(mixer + "-training.lock"))
            AssertOneLineError(Train(mixer), "is being written by another run");
        Assert.False(Directory.Exists(mixer));
    }

    [Fact]
    public void Every_out_is_checked_before_the_work_starts()
    {
        string file = Path.Combine(Root, "a-file");
        File.WriteAllText(file, "x");
        string under = Path.Combine(file, "sub", "results.json");
        string data = Path.Combine(TestPaths.NewTempDir(), "sst2");
        Directory.CreateDirectory(data);
        File.WriteAllLines(Path.Combine(data, "dev.tsv"), ["label\tsentence", "1\ta fine film", "0\ta dull mess"]);
        var eval = CliRunner.Run("eval", "--model", TinyDefaultModel.Path_, "--tasks", "sst2", "--data-dir", Path.GetDirectoryName(data)!, "--out", under);
        AssertOneLineError(eval, "--out " + under);
        Assert.DoesNotContain("sst2 (n=", eval.Stdout); // refused before evaluating, not after
        var folder = CliRunner.Run("eval", "--model", TinyDefaultModel.Path_, "--tasks", "sst2", "--data-dir", Path.GetDirectoryName(data)!, "--out", Root);
        AssertOneLineError(folder, "is a folder");
        Assert.DoesNotContain("sst2 (n=", folder.Stdout);

        AssertOneLineError(CliRunner.Run("logits", "--model", TinyDefaultModel.Path_, "--ids", "1,2", "--out", Path.Combine(file, "x.npy")), "--out " + Path.Combine(file, "x.npy"));
        AssertOneLineError(CliRunner.Run("lora", "train", "--model", TinyDefaultModel.Path_, "--data", Data.Value, "--out", Path.Combine(file, "adapter")), "--out " + Path.Combine(file, "adapter"));
    }

    [Fact]
    public void An_over_long_prompt_is_refused_without_being_echoed_and_logits_names_its_own_options()
    {
        string text = string.Join(' ', Enumerable.Repeat("add 1 2 3 4 5 6 7 8 9", 80));
        var generate = CliRunner.Run("generate", "--model", TinyDefaultModel.Path_, "--prompt", text, "--max-tokens", "2");
        AssertOneLineError(generate, "max_position_embeddings");
        Assert.Equal("", generate.Stdout.Trim());

        var logits = CliRunner.Run("logits", "--model", TinyDefaultModel.Path_, "--text", text, "--out", Path.Combine(Root, "long.npy"));
        AssertOneLineError(logits, "give fewer --ids or a shorter --text");
        Assert.DoesNotContain("--max-tokens", logits.Stderr);

        var fine = CliRunner.Run("generate", "--model", TinyDefaultModel.Path_, "--prompt", "add 1", "--max-tokens", "2");
        Assert.True(fine.ExitCode == 0, fine.Stderr);
        Assert.StartsWith("add 1", fine.Stdout);
    }

    private static CliRunner.Outcome Train(string outDir, params string[] extra) => CliRunner.Run(
    [
        "mixer", "train", "--model", TinyDefaultModel.Path_, "--data", Data.Value, "--out", outDir,
        "--experts", $"full={FullAdapter.Value},qv={QvAdapter.Value}", "--stage2-samples", "4", "--batch-size", "4", "--top-k", "1", .. extra,
    ]);

    private static string Adapter(string name, string targets)
    {
        string dir = Path.Combine(Root, name);
        var run = CliRunner.Run("lora", "train", "--model", TinyDefaultModel.Path_, "--data", Data.Value, "--out", dir,
            "--rank", "2", "--alpha", "4", "--targets", targets, "--max-steps", "1", "--batch-size", "4", "--lr", "1e-2");
        Assert.True(run.ExitCode == 0, run.Stderr);
        return dir;
    }

    private static void AssertOneLineError(CliRunner.Outcome outcome, string mustContain)
    {
        Assert.True(outcome.ExitCode == 1, $"exit {outcome.ExitCode}, expected 1; stderr: {outcome.Stderr}");
        string line = Assert.Single(outcome.Stderr.Trim().Split('\n'));
        Assert.StartsWith("error: ", line);
        Assert.Contains(mustContain, line);
        Assert.DoesNotContain("System.", line);
    }
}
