using System.Text.Json.Nodes;
using LoraMixer.Demo;
using LoraMixer.Experiments;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Tests.Training;

namespace LoraMixer.Tests.Experiments;

[Collection(TrainingCollection.Name)]
public sealed class ExperimentRunnerTests
{
    private static readonly string[] Methods = { "base", "oracle", "mixlora", "mixer-pnp", "rsl-none" };

    /// <summary>A base model pretrained for three steps, and an SST-2 folder in the GLUE tsv format.</summary>
    private static (string BaseDir, string DataDir) Setup(string root)
    {
        string baseDir = Path.Combine(root, "base");
        DefaultModel.Pretrain(baseDir, DemoOptions.Quick(root, baseDir).Pretrain);
        string dataDir = Path.Combine(root, "data");
        Directory.CreateDirectory(Path.Combine(dataDir, "sst2"));
        string[] good = { "a great , warm film", "wonderful and moving", "a joy" }, bad = { "dull and tired", "an awful mess", "boring" };
        File.WriteAllLines(Path.Combine(dataDir, "sst2", "train.tsv"),
            new[] { "label\tsentence" }.Concat(Enumerable.Range(0, 30).Select(i => i % 2 == 0 ? $"1\t{good[i % 3]} {i}" : $"0\t{bad[i % 3]} {i}")));
        File.WriteAllLines(Path.Combine(dataDir, "sst2", "dev.tsv"), new[] { "label\tcontent", "1\ta great joy", "0\tdull mess", "1\tmoving", "0\tboring and awful" });
        return (baseDir, dataDir);
    }

    private static ExperimentRecipe Recipe(string baseDir, string dataDir) => new()
    {
        Name = "t", BaseModel = baseDir, DataDir = dataDir, Tasks = new[] { "add", "sentiment", "sst2" },
        Stage1Samples = 12, Stage1Steps = 3, Stage2Samples = 16, Stage2Steps = 2, Rank = 2, TopK = 2, BatchSize = 8, MaxLength = 48,
        Methods = Methods, Seeds = new[] { 0 }, EvalLimit = 3, DemoTestPerTask = 3,
    };

    [Fact]
    public void A_run_writes_one_result_per_method_reuses_finished_steps_and_refuses_changed_settings()
    {
        string root = TestPaths.NewTempDir();
        var (baseDir, dataDir) = Setup(root);
        string runDir = Path.Combine(root, "run");
        var recipe = Recipe(baseDir, dataDir);
        var lines = new List<string>();
        ExperimentRunner.Run(recipe, runDir, (_, work) => work(null!, default), lines.Add);

        foreach (var id in Methods)
        {
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(runDir, "seed-0", "results", id + ".json")))!;
            Assert.Equal(id, (string?)json["method"]);
            Assert.Equal(ExperimentMethods.Get(id).Label, (string?)json["label"]);
            var scores = json["scores"]!.AsObject();
            Assert.Equal(recipe.Tasks, scores.Select(s => s.Key));
            Assert.Equal(3, (int)scores["add"]!["n"]!);
            Assert.Equal(3, (int)scores["sst2"]!["n"]!); // eval_limit
            Assert.Equal("accuracy", (string?)scores["sst2"]!["metric"]);
            foreach (var (_, s) in scores)
            {
                double v = (double)s!["value"]!, lo = (double)s["ci95"]![0]!, hi = (double)s["ci95"]![1]!;
                Assert.InRange(v, 0, 100);
                Assert.True(lo <= v + 1e-9 && v <= hi + 1e-9, $"{id}: {v} outside [{lo}, {hi}]");
            }
        }
        var pnp = JsonNode.Parse(File.ReadAllText(Path.Combine(runDir, "seed-0", "results", "mixer-pnp.json")))!;
        Assert.Equal(3, pnp["routing"]!["experts"]!.AsArray().Count);
        Assert.Equal("ablation", (string?)JsonNode.Parse(File.ReadAllText(Path.Combine(runDir, "seed-0", "results", "rsl-none.json")))!["group"]);
        Assert.True(File.Exists(Path.Combine(runDir, (string)pnp["train_logs"]!["LoRA-Mixer (plug-and-play)"]!)), "train log paths are relative to the run folder");

        // The saved mixer loads onto the base with the recipe's experts.
        using (var model = ModelLoader.LoadCausalLM(baseDir))
        using (var mixer = MixerCheckpoint.Load(model, Path.Combine(runDir, "seed-0", "mixers", "mixer-pnp")))
            Assert.Equal(recipe.Tasks, mixer.ExpertNames);

        var manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(runDir, ExperimentManifest.FileName)))!;
        Assert.Equal(recipe.Hash(), (string?)manifest["recipe_sha256"]);
        Assert.Equal(64, ((string?)manifest["base_model"]!["sha256"])!.Length);
        Assert.Equal(2, manifest["data"]!.AsObject().Count); // sst2 train and dev
        var steps = manifest["steps"]!.AsArray().Select(s => (string?)s!["id"]).ToArray();
        Assert.Contains("seed-0/stage1", steps);
        Assert.Equal(Methods.Length + 1, steps.Length);

        // Run again: nothing is redone (results untouched), except a method whose result was removed,
        // which reruns without retraining the stage-1 experts.
        var stamps = Methods.ToDictionary(id => id, id => File.GetLastWriteTimeUtc(Path.Combine(runDir, "seed-0", "results", id + ".json")));
        var expertsStamp = File.GetLastWriteTimeUtc(Path.Combine(runDir, "seed-0", "experts", "mixer_config.json"));
        File.Delete(Path.Combine(runDir, "seed-0", "results", "oracle.json"));
        lines.Clear();
        ExperimentRunner.Run(recipe, runDir, (_, work) => work(null!, default), lines.Add);
        Assert.Equal(Methods.Length - 1, lines.Count(l => l.EndsWith("(cached)")));
        foreach (var id in Methods.Where(id => id != "oracle"))
            Assert.Equal(stamps[id], File.GetLastWriteTimeUtc(Path.Combine(runDir, "seed-0", "results", id + ".json")));
        Assert.True(File.Exists(Path.Combine(runDir, "seed-0", "results", "oracle.json")));
        Assert.Equal(expertsStamp, File.GetLastWriteTimeUtc(Path.Combine(runDir, "seed-0", "experts", "mixer_config.json")));

        // Changed training settings are refused; more seeds or methods are not.
        var e = Assert.Throws<ArgumentException>(() => ExperimentRunner.Run(recipe with { Rank = 4 }, runDir, (_, work) => work(null!, default), _ => { }));
        Assert.Contains("other settings", e.Message);
    }
}
