using LoraMixer.Demo;
using LoraMixer.Errors;
using LoraMixer.Evaluation;
using LoraMixer.IO;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Experiments;

/// <summary>
/// <c>loramixer experiment run</c>: every method of a recipe on every seed, each step once. A finished step
/// leaves an artefact (stage-1 experts, a mixer, a result file) that a later run reuses; an interrupted
/// training resumes from its last checkpoint. The run folder holds <c>recipe.json</c>, <c>manifest.json</c> and
/// <c>seed-&lt;s&gt;/</c> with <c>experts/</c>, <c>mixers/</c>, <c>training/</c> and <c>results/&lt;method&gt;.json</c>.
/// </summary>
public static class ExperimentRunner
{
    /// <summary>File name of the recipe copy inside a run folder.</summary>
    public const string RecipeFile = "recipe.json";

    /// <summary>Runs (or resumes) <paramref name="recipe"/> into <paramref name="runDir"/>.</summary>
    /// <param name="recipe">What to run.</param>
    /// <param name="runDir">The run folder.</param>
    /// <param name="host">Runs each training stage under the caller's progress display.</param>
    /// <param name="log">Receives one line per step.</param>
    /// <param name="device">Where models run (CPU by default).</param>
    /// <param name="pretrain">
    /// How to pretrain a missing base model (the demo's <c>--quick</c> and tests); null = the default model's
    /// settings, and only the default model is pretrained.
    /// </param>
    /// <exception cref="ArgumentException">The folder holds a run of a recipe with other settings.</exception>
    public static void Run(ExperimentRecipe recipe, string runDir, TrainingHost host, Action<string> log, Device? device = null, PretrainSettings? pretrain = null)
    {
        recipe.Validate();
        runDir = Path.GetFullPath(runDir);
        Directory.CreateDirectory(runDir);
        string recipePath = Path.Combine(runDir, RecipeFile);
        if (File.Exists(recipePath) && ExperimentRecipe.Load(recipePath).Hash() != recipe.Hash())
            throw new ArgumentException($"{runDir} holds a run of a recipe with other settings (between runs only seeds and methods may change); choose another output folder");
        var bytes = System.Text.Encoding.UTF8.GetBytes(recipe.ToJson());
        AtomicFile.Write(recipePath, s => s.Write(bytes));
        device ??= CPU;

        string baseDir = recipe.BaseModel == "default" ? DefaultModel.CacheDir(recipe.Arch) : Path.GetFullPath(recipe.BaseModel);
        var pretrainSettings = (pretrain ?? (recipe.Arch == "mamba" ? DemoOptions.MambaDefaults(new DemoOptions()) : new DemoOptions()).Pretrain) // as the demo
            with { Device = device, Arch = recipe.Arch };
        string? stale = recipe.BaseModel == "default" || pretrain is not null
            ? DefaultModel.Exists(baseDir) ? DefaultModel.Staleness(baseDir, pretrainSettings) : "first run only"
            : null;
        if (stale is not null)
        {
            log($"pretraining the default model into {baseDir} ({(DefaultModel.Exists(baseDir) ? "the cached one is stale: " : "")}{stale})");
            var pre = host("pretrain", (p, ct) => DefaultModel.Pretrain(baseDir, pretrainSettings, p, ct));
            if (pre.Interrupted) throw new OperationCanceledException("pretraining was interrupted; run again to start over");
        }
        else if (!Directory.Exists(baseDir))
        {
            throw new DataFormatException($"base_model folder not found: {baseDir} (a Hugging Face model folder, or \"default\")");
        }
        var locator = ExperimentTasks.NeedsData(recipe) ? EvalDataLocator.Resolve(recipe.DataDir) : null;
        var manifest = ExperimentManifest.Open(runDir, recipe, baseDir, locator is null ? Array.Empty<string>() : ExperimentTasks.DataFiles(recipe, locator));
        var tokenizer = TokenizerLoader.Load(baseDir);
        log($"experiment {recipe.Name}: {recipe.Methods.Count} methods × {recipe.Seeds.Count} seeds on {string.Join(", ", recipe.Tasks)}; base {baseDir}");
        foreach (int seed in recipe.Seeds)
        {
            var run = new ExperimentSeedRun(recipe, seed, Path.Combine(runDir, $"seed-{seed}"), baseDir, tokenizer, device, host, log, manifest, locator);
            foreach (var method in recipe.Methods) run.Run(method);
        }
    }
}
