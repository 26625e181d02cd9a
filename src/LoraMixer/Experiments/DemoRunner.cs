using System.Diagnostics;
using LoraMixer.Data;
using LoraMixer.Demo;
using LoraMixer.Mixing;
using LoraMixer.Training;

namespace LoraMixer.Experiments;

/// <summary>
/// The README's main job, as a built-in recipe of the experiment runner: on the toy suite (<see cref="DemoSuite"/>)
/// and the embedded default model, one seed of <see cref="Methods"/> — each expert on its own task (stage 1),
/// a multi-task LoRA with the same parameter budget, the uniform merge, LoRAHub, MoLE and the routers of both
/// LoRA-Mixer paradigms — each evaluated on held-out items of every task. Writes the run folder
/// (<c>seed-&lt;s&gt;/</c> with experts, mixers, training logs and results), the suite as JSONL in <c>data/</c>,
/// and the report (<see cref="DemoReport"/>).
/// </summary>
public static class DemoRunner
{
    /// <summary>The demo's methods (ids of <see cref="ExperimentMethods"/>), in table order.</summary>
    public static readonly IReadOnlyList<string> Methods =
        ["base", "oracle", "multitask", "merge", "lorahub", "mole", "mixer-joint", "mixer-pnp", "mixer-pnp-paper"];

    /// <summary>The demo's method labels, in table order.</summary>
    public static IReadOnlyList<string> MethodNames => Methods.Select(m => ExperimentMethods.Get(m).Label).ToArray();

    /// <summary>
    /// The demo's recipe: the toy suite's tasks, the demo's methods, one seed, the default model and the
    /// recipe defaults (sizes, learning rates, the default router), with sequences of at most 64 tokens.
    /// </summary>
    public static ExperimentRecipe DefaultRecipe { get; } = new()
    {
        Name = "demo",
        Tasks = DemoSuite.Tasks.Select(t => t.Name).ToArray(),
        MaxLength = 64,
        Methods = Methods,
        Seeds = [0],
    };

    /// <summary>Runs the demo afresh; <paramref name="log"/> receives one line per phase.</summary>
    public static DemoResult Run(DemoOptions options, TrainingHost host, Action<string> log)
    {
        var clock = Stopwatch.StartNew();
        string outDir = Path.GetFullPath(options.OutputDir);
        var recipe = options.Recipe;
        recipe.Validate();
        if (recipe.Seeds.Count != 1) throw new ArgumentException($"the demo runs one seed, got {recipe.Seeds.Count}; use `experiment run` for several");
        int seed = recipe.Seeds[0];
        string seedDir = Path.Combine(outDir, $"seed-{seed}");
        // The demo always trains afresh: results of an earlier run (perhaps of older code) are never reused.
        Directory.CreateDirectory(outDir);
        if (Directory.Exists(seedDir)) Directory.Delete(seedDir, recursive: true);
        foreach (string file in new[] { ExperimentRunner.RecipeFile, ExperimentManifest.FileName })
            File.Delete(Path.Combine(outDir, file));

        // The suite as JSONL, so that every method can be rerun from the command line (lora train, mixer train, mixer diagnose).
        var data = new ExperimentTasks(recipe, seed, null);
        Directory.CreateDirectory(Path.Combine(outDir, "data"));
        JsonlDataset.Write(Path.Combine(outDir, "data", "train.jsonl"), data.Train);
        JsonlDataset.Write(Path.Combine(outDir, "data", "test.jsonl"), data.HeldOutRecords);
        log($"suite: {recipe.Tasks.Count} tasks ({string.Join(", ", recipe.Tasks)}), {recipe.Stage1Samples} training and {recipe.DemoTestPerTask} test items each; data in {Path.Combine(outDir, "data")}");

        ExperimentRunner.Run(recipe, outDir, host, log, options.Device, options.Pretrain);

        var rows = new List<DemoMethodResult>();
        var routing = new Dictionary<string, RoutingStatistics>();
        var logs = new Dictionary<string, string>();
        foreach (string id in recipe.Methods)
        {
            var result = MethodResult.Load(Path.Combine(seedDir, "results", id + ".json"), seed);
            rows.Add(new DemoMethodResult(result.Label, result.Scores.ToDictionary(s => s.Key, s => s.Value.Value),
                result.TrainableParams ?? 0, result.TokensPerSecond ?? 0));
            foreach (var (stage, path) in result.TrainLogs) logs.TryAdd(stage, Path.Combine(outDir, path));
            if (RunJson.ReadObject(result.File, "result file")["routing"]?["held_out"] is System.Text.Json.Nodes.JsonObject heldOut)
                routing[result.Label] = RoutingStatistics.FromJson(heldOut);
        }
        string experts = Path.Combine(seedDir, "experts");
        string architecture = File.Exists(Path.Combine(experts, "mixer_config.json")) ? MixerConfig.Load(experts).Architecture : recipe.Arch;
        var demo = new DemoResult(recipe.Tasks, rows, routing, logs, outDir, clock.Elapsed, architecture);
        DemoReport.Write(demo);
        return demo;
    }
}
