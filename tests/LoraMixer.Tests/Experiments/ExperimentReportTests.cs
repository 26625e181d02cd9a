using System.Text.Json.Nodes;
using LoraMixer.Errors;
using LoraMixer.Experiments;

namespace LoraMixer.Tests.Experiments;

public sealed class ExperimentReportTests
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>
    /// A run of 2 seeds × 3 methods (base, mixer-joint, an RSL ablation) on 2 tasks; mixer-joint has routing and,
    /// at seed 0, a short train log. The ablation lacks sst2 at seed 1, so its Avg has seed 0 only.
    /// </summary>
    internal static string WriteRun(bool optionalParts = true)
    {
        string run = TestPaths.NewTempDir();
        if (optionalParts)
        {
            File.WriteAllText(Path.Combine(run, "recipe.json"),
                """{"name": "tiny-run", "tasks": ["add", "sst2"], "methods": ["base", "mixer-joint", "mixer-no-rsl"], "seeds": [0, 1], "steps": 10}""");
            File.WriteAllText(Path.Combine(run, "manifest.json"),
                """{"name": "tiny-run", "created": "2026-01-01T00:00:00Z", "versions": {"loramixer": "0.9.0", "torchsharp": "0.107.0"}, "base_model": {"path": "models/base", "sha256": "abc123"}, "data": {}, "steps": []}""");
            Directory.CreateDirectory(Path.Combine(run, "seed-0", "logs"));
            File.WriteAllLines(Path.Combine(run, "seed-0", "logs", "train_log.jsonl"),
            [
                """{"step":1,"epoch":0.1,"loss":4.0,"lr":0.0001,"grad_norm":1.9,"tokens_per_s":934.7}""",
                """{"step":2,"epoch":0.2,"loss":"NaN","lr":0.0001}""",
                """{"step":3,"epoch":0.3,"loss":3.0,"lr":0.0001,"extra":1}""",
                """{"step":3,"eval":{"eval_loss":2.5}}""",
                """{"step":4,"epoch":0.4,"loss":2.0""",
            ]);
        }
        double?[,] scores = { { 10, 50, 20, 60 }, { 80, 70, 90, 74 }, { 60, 66, 70, null } }; // method × (add s0, sst2 s0, add s1, sst2 s1)
        string[] methods = ["base", "mixer-joint", "mixer-no-rsl"];
        string[] labels = ["Base model", "LoRA-Mixer (joint)", "RSL off & no balance"];
        for (int seed = 0; seed < 2; seed++)
        {
            for (int m = 0; m < 3; m++)
            {
                var taskScores = new JsonObject();
                if (scores[m, 2 * seed] is { } add) taskScores["add"] = new JsonObject { ["metric"] = "accuracy", ["value"] = add, ["n"] = 50, ["ci95"] = new JsonArray(add - 5, add + 5) };
                if (scores[m, 2 * seed + 1] is { } sst2) taskScores["sst2"] = new JsonObject { ["metric"] = "accuracy", ["value"] = sst2, ["n"] = 50 };
                var json = new JsonObject
                {
                    ["method"] = methods[m], ["label"] = labels[m], ["group"] = m == 2 ? "ablation" : "main", ["seed"] = seed,
                    ["trainable_params"] = 1000 * m + 10 * seed, ["tokens_per_second"] = 100.0 + seed, ["scores"] = taskScores,
                };
                if (optionalParts && m == 1) json["routing"] = Routing(seed);
                if (optionalParts && m == 1 && seed == 0) json["train_logs"] = new JsonObject { ["stage 2"] = "seed-0/logs/train_log.jsonl", ["gone"] = "seed-0/logs/missing.jsonl" };
                string dir = Path.Combine(run, $"seed-{seed}", "results");
                Directory.CreateDirectory(dir);
                File.WriteAllText(Path.Combine(dir, methods[m] + ".json"), json.ToJsonString());
            }
        }
        return run;
    }

    private static JsonObject Routing(int seed) => JsonNode.Parse($$$"""
        {"experts": ["add", "sst2"], "tasks": ["add", "sst2"], "routers": [
          {"router": "model.layers.0.router", "tokens": 100, "load": [0.6, 0.4], "mean_entropy": 0.{{{5 + seed}}},
           "task_expert": {"add": [0.9, 0.1], "sst2": [0.3, 0.7]}},
          {"router": "model.layers.1.router", "tokens": 100, "load": [0.5, 0.5], "mean_entropy": "NaN",
           "task_expert": {"add": [1.0, 0.0], "sst2": ["NaN", "NaN"]}}]}
        """)!.AsObject();

    [Fact]
    public void Scores_are_the_mean_and_sample_sd_over_seeds_and_avg_is_per_seed_first()
    {
        var results = ExperimentResults.Load(WriteRun());

        Assert.Equal("tiny-run", results.Name);
        Assert.Equal(new[] { 0, 1 }, results.Seeds);
        Assert.Equal(new[] { "add", "sst2" }, results.Tasks);
        Assert.Equal(new[] { "base", "mixer-joint", "mixer-no-rsl" }, results.Methods.Select(m => m.Method));

        var mixer = results.Find("mixer-joint")!;
        // add: 80, 90 → mean 85, sd = sqrt(((−5)² + 5²) / 1) = 7.0711.
        Assert.Equal(85, mixer.Scores["add"].Mean, 9);
        Assert.Equal(Math.Sqrt(50), mixer.Scores["add"].Sd!.Value, 9);
        Assert.Equal(2, mixer.Scores["add"].Seeds);
        // Avg per seed: (80 + 70) / 2 = 75 and (90 + 74) / 2 = 82 → mean 78.5, sd sqrt(2 · 3.5²) = 4.9497.
        Assert.Equal(78.5, mixer.Average!.Mean, 9);
        Assert.Equal(Math.Sqrt(24.5), mixer.Average.Sd!.Value, 9);
        Assert.Equal(1005, mixer.TrainableParams!.Value, 9);
        Assert.Equal(100.5, mixer.TokensPerSecond!.Value, 9);

        // The ablation lacks sst2 at seed 1: sst2 has one seed (no sd) and the Avg uses seed 0 only, (60 + 66) / 2.
        var ablation = results.Find("mixer-no-rsl")!;
        Assert.Equal(new AggregatedScore(66, null, 1), ablation.Scores["sst2"]);
        Assert.Equal(new AggregatedScore(63, null, 1), ablation.Average);
        Assert.Equal("accuracy", results.Metric("sst2"));
        Assert.Equal("abc123", results.Manifest!.BaseModelSha256);
        Assert.Equal(2, results.Find("mixer-joint")!.Seeds.Count);
    }

    [Fact]
    public void Methods_missing_from_the_recipe_come_last()
    {
        string run = WriteRun();
        File.WriteAllText(Path.Combine(run, "seed-0", "results", "aaa-extra.json"),
            """{"method": "aaa-extra", "label": "Extra", "group": "main", "seed": 0, "scores": {"add": {"metric": "accuracy", "value": 1}}}""");

        var results = ExperimentResults.Load(run);

        Assert.Equal(new[] { "base", "mixer-joint", "mixer-no-rsl", "aaa-extra" }, results.Methods.Select(m => m.Method));
        Assert.Null(results.Find("aaa-extra")!.Average); // no sst2 score, so no seed has every task
    }

    [Fact]
    public void Markdown_and_html_show_the_tables_with_the_best_of_each_column_in_bold()
    {
        string run = WriteRun(), output = Path.Combine(run, "report");
        ExperimentReport.Write(run, output);
        string readme = File.ReadAllText(Path.Combine(output, "README.md"));
        string html = File.ReadAllText(Path.Combine(output, "index.html"));

        string main = readme[readme.IndexOf("## Results", StringComparison.Ordinal)..readme.IndexOf("## RSL ablation", StringComparison.Ordinal)];
        Assert.Contains("| Method | add | sst2 | Avg |", main);
        Assert.Contains("| LoRA-Mixer (joint) | **85.0 ± 7.1** | **72.0 ± 2.8** | **78.5 ± 4.9** |", main);
        Assert.Contains("| Base model | 15.0 ± 7.1 | 55.0 ± 7.1 | 35.0 ± 7.1 |", main);
        Assert.DoesNotContain("RSL off", main.Split("| Method | Trainable params")[0]); // ablation rows stay out of the main table
        Assert.Contains("| LoRA-Mixer (joint) | 1,005 | 100.5 | – | 2 of 2 |", main);

        string ablation = readme[readme.IndexOf("## RSL ablation", StringComparison.Ordinal)..readme.IndexOf("## Figures", StringComparison.Ordinal)];
        Assert.Contains("| RSL off & no balance | 65.0 ± 7.1 | 66.0 | 63.0 |", ablation);
        Assert.Contains("| LoRA-Mixer (joint) | **85.0 ± 7.1**", ablation);
        Assert.DoesNotContain("Base model", ablation);

        Assert.Contains("torchsharp: `0.107.0`", readme);
        Assert.Contains("abc123", readme);
        Assert.Contains("![", readme);
        Assert.Contains("(routing-heatmap-layer0.png)", readme);

        Assert.StartsWith("<!DOCTYPE html>", html);
        Assert.Contains("<td>LoRA-Mixer (joint)</td><td><b>85.0 ± 7.1</b></td><td><b>72.0 ± 2.8</b></td><td><b>78.5 ± 4.9</b></td>", html);
        Assert.Contains("<td>Base model</td><td>15.0 ± 7.1</td>", html);
        Assert.Contains("RSL off &amp; no balance", html);
        Assert.DoesNotContain("RSL off & no", html);
        Assert.Contains("<img src=\"scores.png\"", html);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("http", html, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Every_plot_is_a_png_and_is_linked_from_both_pages()
    {
        string run = WriteRun(), output = TestPaths.NewTempDir();
        var written = ExperimentReport.Write(run, output);

        string[] plots =
        [
            "scores.png", "rsl-ablation.png", "routing-heatmap-layer0.png", "routing-heatmap-layer1.png",
            "expert-load.png", "routing-entropy.png", "training-curves.png", "eval-curves.png",
        ];
        Assert.Equal(plots.Select(p => Path.Combine(output, p)).Order(), written.Where(w => w.EndsWith(".png")).Order());
        string readme = File.ReadAllText(Path.Combine(output, "README.md")), html = File.ReadAllText(Path.Combine(output, "index.html"));
        foreach (string plot in plots)
        {
            Assert.Equal(PngSignature, File.ReadAllBytes(Path.Combine(output, plot))[..8]);
            Assert.Contains($"({plot})", readme);
            Assert.Contains($"src=\"{plot}\"", html);
        }
    }

    [Fact]
    public void A_run_without_recipe_manifest_routing_logs_or_ablation_still_reports()
    {
        string run = WriteRun(optionalParts: false);
        foreach (var file in Directory.GetFiles(run, "mixer-no-rsl.json", SearchOption.AllDirectories)) File.Delete(file);
        string output = Path.Combine(run, "out");

        var written = ExperimentReport.Write(run, output);

        Assert.Equal(new[] { "README.md", "index.html", "scores.png" }, written.Select(Path.GetFileName));
        string readme = File.ReadAllText(Path.Combine(output, "README.md"));
        Assert.Contains(Path.GetFileName(run), readme); // the folder names the run without a recipe
        Assert.DoesNotContain("## Setup", readme);
        Assert.DoesNotContain("## RSL ablation", readme);
        Assert.DoesNotContain("routing", readme);
    }

    [Fact]
    public void A_malformed_result_file_is_named_in_the_error()
    {
        string run = WriteRun();
        string bad = Path.Combine(run, "seed-1", "results", "base.json");
        File.WriteAllText(bad, "{\"method\": \"base\", \"scores\": ");
        var error = Assert.Throws<DataFormatException>(() => ExperimentResults.Load(run));
        Assert.Contains(bad, error.Message);

        File.WriteAllText(bad, """{"method": "base", "scores": {"add": {"metric": "accuracy", "value": "high"}}}""");
        error = Assert.Throws<DataFormatException>(() => ExperimentResults.Load(run));
        Assert.Contains(bad, error.Message);
        Assert.Contains("'value'", error.Message);
    }

    [Fact]
    public void A_folder_without_results_names_the_expected_layout()
    {
        string run = TestPaths.NewTempDir();
        var error = Assert.Throws<DataFormatException>(() => ExperimentResults.Load(run));
        Assert.Contains(run, error.Message);
        Assert.Contains("seed-<s>/results/<method>.json", error.Message);
        Assert.Throws<DirectoryNotFoundException>(() => ExperimentResults.Load(Path.Combine(run, "absent")));
    }
}
