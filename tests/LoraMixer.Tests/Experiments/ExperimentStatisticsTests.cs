using System.Text.Json.Nodes;
using LoraMixer.Evaluation;
using LoraMixer.Experiments;

namespace LoraMixer.Tests.Experiments;

/// <summary>Intervals over seeds and items, paired comparisons with multi-task LoRA, the accuracy-only Avg, and the cache key.</summary>
public sealed class ExperimentStatisticsTests
{
    private static ItemOutcome[] Scores(params int[] correct) => correct.Select((c, i) => new ItemOutcome(i, c)).ToArray();

    [Fact]
    public void The_item_metric_is_accuracy_in_percent_or_mcc_times_100()
    {
        Assert.Equal(75, SeedItemBootstrap.Metric("accuracy", Scores(1, 1, 0, 1)), 12);
        // TP 1 (pred 1, gold 1), TN 1, FP 1, FN 0: (1·1 − 1·0) / √(2·1·1·2) = 0.5.
        ItemOutcome[] labels = [new(0, 1, 1, 1), new(1, 1, 0, 0), new(2, 0, 1, 0)];
        Assert.Equal(50, SeedItemBootstrap.Metric("mcc", labels), 9);
    }

    [Fact]
    public void The_interval_covers_seed_spread_and_item_sampling()
    {
        // Two seeds, one all right and one all wrong: resampled seed means are 0, 50 or 100 (1/4, 1/2, 1/4).
        var (lower, upper) = SeedItemBootstrap.Interval("accuracy", [Scores(1, 1, 1, 1), Scores(0, 0, 0, 0)]);
        Assert.Equal((0.0, 100.0), (lower, upper));
        // One seed, 1,000 items at 50%: the binomial standard error is 1.58 points, so the interval is about ±3.1.
        var many = Enumerable.Range(0, 1000).Select(i => i % 2).ToArray();
        var (a, b) = SeedItemBootstrap.Interval("accuracy", [Scores(many)]);
        Assert.InRange(b - a, 5.5, 7.0);
        Assert.InRange((a + b) / 2, 49, 51);
    }

    [Fact]
    public void The_paired_bootstrap_compares_the_same_items()
    {
        var baseline = Scores(Enumerable.Range(0, 100).Select(i => i < 60 ? 1 : 0).ToArray());
        var same = SeedItemBootstrap.Paired("multitask", "accuracy", [(baseline, baseline)])!;
        Assert.Equal((0.0, 0.0, 0.0, 1.0), (same.Delta, same.Lower, same.Upper, same.P));

        // Right on every item the baseline gets right, and on 10 more: +10 points, and no resample can reverse it.
        var better = Scores(Enumerable.Range(0, 100).Select(i => i < 70 ? 1 : 0).ToArray());
        var paired = SeedItemBootstrap.Paired("multitask", "accuracy", [(better, baseline)])!;
        Assert.Equal(10, paired.Delta, 9);
        Assert.True(paired.Lower > 0, $"{paired.Lower}");
        Assert.Equal(0, paired.P);
        Assert.Equal((1, 100), (paired.Seeds, paired.Items));
    }

    private static string WriteRun()
    {
        string run = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(run, "recipe.json"), """{"name": "stats", "tasks": ["add", "cola"], "methods": ["multitask", "mixer-pnp"], "seeds": [0, 1]}""");
        // add: 10 items; cola: 4 labelled items. mixer-pnp gets 2 more add items right than multitask in every seed.
        for (int seed = 0; seed < 2; seed++)
        {
            foreach (var (method, extra) in new[] { ("multitask", 0), ("mixer-pnp", 2) })
            {
                int right = 5 + extra + seed;
                var add = Enumerable.Range(0, 10).Select(i => i < right ? 1 : 0).ToArray();
                int[] predicted = method == "multitask" ? [1, 1, 1, 1] : [1, 0, 1, 0];
                int[] gold = [1, 0, 1, 0];
                var scores = new JsonObject
                {
                    ["add"] = new JsonObject
                    {
                        ["metric"] = "accuracy", ["value"] = 10.0 * right, ["n"] = 10,
                        ["items"] = new JsonObject { ["index"] = Numbers(Enumerable.Range(0, 10)), ["score"] = Numbers(add) },
                    },
                    ["cola"] = new JsonObject
                    {
                        ["metric"] = "mcc", ["value"] = method == "multitask" ? 0.0 : 100.0, ["n"] = 4,
                        ["items"] = new JsonObject
                        {
                            ["index"] = Numbers(Enumerable.Range(0, 4)), ["score"] = Numbers(predicted.Select((p, i) => p == gold[i] ? 1 : 0)),
                            ["predicted"] = Numbers(predicted), ["gold"] = Numbers(gold),
                        },
                    },
                };
                string dir = Path.Combine(run, $"seed-{seed}", "results");
                Directory.CreateDirectory(dir);
                File.WriteAllText(Path.Combine(dir, method + ".json"), new JsonObject { ["method"] = method, ["seed"] = seed, ["scores"] = scores }.ToJsonString());
            }
        }
        return run;
    }

    private static JsonArray Numbers(IEnumerable<int> values) => new(values.Select(v => (JsonNode?)JsonValue.Create(v)).ToArray());

    [Fact]
    public void Results_carry_intervals_paired_comparisons_and_an_avg_over_accuracy_tasks_only()
    {
        string run = WriteRun();
        var results = ExperimentResults.Load(run);
        var mixer = results.Find("mixer-pnp")!;
        // add: 70 and 80 → mean 75; the Avg is add alone (cola is MCC, shown apart).
        Assert.Equal(75, mixer.Scores["add"].Mean, 9);
        Assert.Equal(75, mixer.Average!.Mean, 9);
        var ci = mixer.Scores["add"].Ci95!.Value;
        Assert.True(ci.Lower < 75 && 75 < ci.Upper, $"{ci}");
        Assert.Equal(20, mixer.Comparisons["add"].Delta, 9);
        Assert.Equal(100, mixer.Comparisons["cola"].Delta, 9); // MCC 1 vs 0 (one class always), × 100
        Assert.Empty(results.Find("multitask")!.Comparisons);

        var table = ScoreTable.Of(results, results.Methods);
        Assert.Equal(["add", "Avg", "cola (MCC)"], table.Columns);

        string report = Path.Combine(run, "report");
        ExperimentReport.Write(run, report);
        string readme = File.ReadAllText(Path.Combine(report, "README.md"));
        Assert.Contains("## Statistics", readme);
        Assert.Contains("| Method | add | cola (MCC) |", readme);
        Assert.Contains("+20.0 [", readme);
        Assert.Contains("| Method | add | Avg | cola (MCC) |", readme);
    }

    [Fact]
    public void A_result_counts_as_done_only_under_the_current_key_and_stale_seed_work_moves_aside()
    {
        string run = TestPaths.NewTempDir(), seedDir = Path.Combine(run, "seed-0");
        string key = ExperimentCache.RunKey("recipe", "model", [KeyValuePair.Create("d/train.tsv", "aa")]);
        Assert.NotEqual(key, ExperimentCache.RunKey("recipe", "model", [KeyValuePair.Create("d/train.tsv", "ab")]));
        Assert.NotEqual(key, ExperimentCache.RunKey("recipe2", "model", [KeyValuePair.Create("d/train.tsv", "aa")]));
        Assert.NotEqual(ExperimentCache.ResultKey(key, "base", 0), ExperimentCache.ResultKey(key, "base", 1));
        Assert.Contains("module", ExperimentCache.CodeVersion);

        // A seed folder from before keys existed is moved aside, with its result.
        Directory.CreateDirectory(Path.Combine(seedDir, "results"));
        string result = Path.Combine(seedDir, "results", "base.json");
        File.WriteAllText(result, """{"method": "base", "scores": {}}""");
        Assert.False(ExperimentCache.IsFresh(result, ExperimentCache.ResultKey(key, "base", 0)));
        string? moved = ExperimentCache.Retire(seedDir, key);
        Assert.NotNull(moved);
        Assert.True(File.Exists(Path.Combine(moved, "results", "base.json")));
        Assert.False(File.Exists(result));
        Assert.StartsWith(Path.Combine(run, "stale"), moved);

        // Under the same key nothing moves; a result written with the key is fresh.
        Directory.CreateDirectory(Path.Combine(seedDir, "results"));
        File.WriteAllText(result, new JsonObject { ["method"] = "base", ["cache_key"] = ExperimentCache.ResultKey(key, "base", 0) }.ToJsonString());
        Assert.Null(ExperimentCache.Retire(seedDir, key));
        Assert.True(ExperimentCache.IsFresh(result, ExperimentCache.ResultKey(key, "base", 0)));
        Assert.False(ExperimentCache.IsFresh(result, ExperimentCache.ResultKey(key, "base", 1)));

        // Another key (other code or settings): the work moves aside again.
        Assert.NotNull(ExperimentCache.Retire(seedDir, ExperimentCache.RunKey("recipe", "other model", [])));
        Assert.False(File.Exists(result));
    }
}
