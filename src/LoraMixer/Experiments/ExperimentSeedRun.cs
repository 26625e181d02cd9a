using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Baselines;
using LoraMixer.Data;
using LoraMixer.Demo;
using LoraMixer.Evaluation;
using LoraMixer.IO;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Experiments;

/// <summary>
/// One seed of an experiment: trains and evaluates each method, writing <c>results/&lt;method&gt;.json</c>
/// (the contract the report reads) and skipping methods whose result already exists.
/// </summary>
internal sealed class ExperimentSeedRun
{
    private readonly ExperimentRecipe _recipe;
    private readonly int _seed;
    private readonly string _dir;
    private readonly string _baseDir;
    private readonly ITokenizer _tokenizer;
    private readonly Device _device;
    private readonly TrainingHost _host;
    private readonly Action<string> _log;
    private readonly ExperimentManifest _manifest;
    private readonly EvalDataLocator? _locator;
    private readonly MixerPipeline _pipeline;
    private ExperimentTasks? _data;

    public ExperimentSeedRun(ExperimentRecipe recipe, int seed, string dir, string baseDir, ITokenizer tokenizer, Device device,
        TrainingHost host, Action<string> log, ExperimentManifest manifest, EvalDataLocator? locator)
    {
        (_recipe, _seed, _dir, _baseDir, _tokenizer, _device) = (recipe, seed, dir, baseDir, tokenizer, device);
        (_host, _log, _manifest, _locator) = (host, log, manifest, locator);
        _pipeline = new MixerPipeline(baseDir, tokenizer, device, (title, work) => host($"seed {seed}: {title}", work), m => log($"  {m}"));
        if (ExperimentCache.Retire(dir, manifest.CacheKey) is { } stale)
            log($"seed {seed}: work made by other code or settings moved to {stale}; recomputing");
    }

    private ExperimentTasks Data => _data ??= new ExperimentTasks(_recipe, _seed, _locator, m => _log("warning: " + m));
    private string ExpertsDir => Path.Combine(_dir, "experts");
    private IReadOnlyList<string> Tasks => _recipe.Tasks;

    /// <summary>Runs <paramref name="methodId"/> unless its result exists.</summary>
    public void Run(string methodId)
    {
        var method = ExperimentMethods.Get(methodId);
        string resultPath = Path.Combine(_dir, "results", method.Id + ".json");
        if (ExperimentCache.IsFresh(resultPath, ResultKey(method.Id)))
        {
            _log($"seed {_seed}, {method.Label}: done before (cached)");
            return;
        }
        var clock = Stopwatch.StartNew();
        if (method.NeedsExperts) EnsureExperts();
        _log($"seed {_seed}, {method.Label}");
        if (RouterMethod(method.Id) is { } routerMethod)
        {
            RunRouterMethod(method, routerMethod, resultPath, clock);
            return;
        }
        using var model = ModelLoader.LoadCausalLM(_baseDir, _device);
        var logs = new Dictionary<string, string>();
        var extra = new JsonObject();
        long trainable = 0;
        MethodBudget budget;
        Dictionary<string, ScoreMeasurement> scores;
        switch (method.Id)
        {
            case "base":
                scores = Evaluate(model, null);
                budget = new MethodBudget(0, 0, 0, ParameterCount(model));
                break;
            case "oracle":
            {
                using var mixer = MixerCheckpoint.Load(model, ExpertsDir);
                mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
                trainable = mixer.ExpertParameterCount() / Tasks.Count;
                logs["stage 1 experts"] = LogPath("stage1");
                scores = Evaluate(model, task => mixer.SetHardExperts(tensor(new long[] { IndexOf(task) })));
                budget = Stage1Budget(mixer.ExpertParameterCount(), ParameterCount(model) - mixer.ExpertParameterCount() + trainable);
                break;
            }
            case "merge":
            {
                using var mixer = MixerCheckpoint.Load(model, ExpertsDir);
                mixer.SetRouting(new RoutingSettings(RoutingMode.Soft)); // zero routers: every expert weighted 1/E
                logs["stage 1 experts"] = LogPath("stage1");
                scores = Evaluate(model, null);
                budget = Stage1Budget(mixer.ExpertParameterCount(), ParameterCount(model) - mixer.RouterParameters().Sum(p => p.Value.numel()));
                break;
            }
            case "lorahub" or "lorahub-pooled":
            {
                using var mixer = MixerCheckpoint.Load(model, ExpertsDir);
                var experts = LoraHub.Snapshot(mixer);
                try
                {
                    var encoder = new ExampleEncoder(_tokenizer, _recipe.MaxLength, Tasks);
                    EncodedExample[] Few(IEnumerable<string> tasks) =>
                        tasks.SelectMany(t => Data.TrainByTask[t].Take(LoraHub.ExamplesPerTask)).Select(encoder.Encode).ToArray();
                    var weights = new JsonObject();
                    void Fit(string key, IEnumerable<string> tasks)
                    {
                        var w = LoraHub.Fit(mixer, experts, Few(tasks), _tokenizer.EosId ?? 0);
                        weights[key] = new JsonArray(w.Select(v => (JsonNode?)Math.Round(v, 4)).ToArray());
                        _log($"  LoRAHub weights ({key}): {string.Join(", ", Tasks.Select((t, i) => $"{t} {w[i]:F2}"))}");
                    }
                    if (method.Id == "lorahub-pooled")
                    {
                        Fit("pooled", Tasks);
                        scores = Evaluate(model, null);
                    }
                    else
                    {
                        scores = Evaluate(model, task => Fit(task, new[] { task })); // one weight vector per target task, on its own examples
                    }
                    extra["lorahub"] = new JsonObject
                    {
                        ["weights"] = weights, ["examples_per_task"] = LoraHub.ExamplesPerTask, ["max_evaluations"] = LoraHub.DefaultMaxEvaluations,
                        ["l1_weight"] = LoraHub.L1Weight, ["bound"] = LoraHub.Bound, ["search"] = "nelder-mead from w = 0, points clipped to the bounds",
                    };
                    int searches = weights.Count;
                    trainable = (long)mixer.Experts * searches;
                    logs["stage 1 experts"] = LogPath("stage1");
                    long merged = mixer.ExpertParameterCount() / mixer.Experts;
                    budget = Stage1Budget(mixer.ExpertParameterCount() + trainable,
                        ParameterCount(model) - mixer.ExpertParameterCount() - mixer.RouterParameters().Sum(p => p.Value.numel()) + merged)
                        with { SearchEvaluations = (long)searches * LoraHub.DefaultMaxEvaluations };
                }
                finally
                {
                    foreach (var t in experts.A.Concat(experts.B)) t.Dispose();
                }
                break;
            }
            case "mole":
            {
                // The stage-1 experts, read through a mixer on a scratch copy of the base model, then gated per matrix.
                using var scratch = ModelLoader.LoadCausalLM(_baseDir, _device);
                using var experts = MixerCheckpoint.Load(scratch, ExpertsDir);
                using var mole = Mole.FromMixer(model, experts);
                Train(method.Label, (p, ct) => mole.Train(_tokenizer, Data.Stage2, Settings("mole", _recipe.Stage2Steps, _recipe.RouterLr), p, ct));
                trainable = mole.ParameterCount;
                logs["stage 1 experts"] = LogPath("stage1");
                logs[method.Label] = LogPath("mole");
                scores = Evaluate(model, null);
                budget = FullBudget(experts.ExpertParameterCount() + trainable, ParameterCount(model));
                extra["mole"] = new JsonObject { ["temperature"] = Mole.DefaultTemperature, ["balance_weight"] = Mole.BalanceWeight };
                break;
            }
            case "multitask":
            {
                var config = ExpertConfig(model) with { R = _recipe.Rank * Tasks.Count, LoraAlpha = 2 * _recipe.Rank * Tasks.Count };
                PeftAdapter? adapter = null;
                Train(method.Label, (p, ct) =>
                {
                    var (a, s) = LoraTrainingJob.Run(model, _tokenizer, Data.Train, config, "multitask", Settings("multitask", _recipe.TotalSteps, _recipe.Lr), p, ct);
                    adapter = a;
                    return s;
                });
                using var trained = adapter!;
                trained.Save(Path.Combine(_dir, "adapters", "multitask"));
                trainable = trained.Modules.Values.Sum(w => w.A.numel() + w.B.numel());
                logs["multi-task LoRA"] = LogPath("multitask");
                scores = Evaluate(model, null);
                budget = FullBudget(trainable, ParameterCount(model));
                break;
            }
            case "mixlora":
            {
                MixLora mix;
                try
                {
                    mix = MixLora.Attach(model, MixLora.DefaultExperts, _recipe.Rank, MixLora.DefaultTopK, _seed);
                }
                catch (NotSupportedException e) // a family without MLPs (Mamba)
                {
                    _log($"  skipped: {e.Message}");
                    return;
                }
                using var mixLora = mix;
                Train(method.Label, (p, ct) => mix.Train(_tokenizer, Data.Train, Settings("mixlora", _recipe.TotalSteps, _recipe.Lr), p, ct));
                trainable = mix.ParameterCount;
                logs["MixLoRA"] = LogPath("mixlora");
                scores = Evaluate(model, null);
                budget = FullBudget(trainable, ParameterCount(model));
                break;
            }
            default:
                throw new ArgumentException($"no way to run method '{method.Id}'");
        }
        WriteResult(resultPath, method, scores, trainable, budget, null, extra, logs, clock.Elapsed.TotalSeconds);
        _manifest.AddStep($"seed-{_seed}/{method.Id}", clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// A method that trains routers over the stage-1 experts (LoRA-Mixer in both paradigms and its ablations):
    /// stage 2 of <see cref="MixerPipeline"/>, then every task scored with the trained mixer.
    /// </summary>
    private void RunRouterMethod(ExperimentMethod method, (Paradigm Paradigm, RouterTraining Settings, RoutingSettings? Inference) training,
        string resultPath, Stopwatch clock)
    {
        var (paradigm, settings, inference) = training;
        using var trained = _pipeline.TrainRouters(paradigm, ExpertSource.Mixer(ExpertsDir), Data.Stage2, Tasks, settings,
            Path.Combine(_dir, "mixers", method.Id), new JsonObject { ["method"] = method.Id, ["seed"] = _seed });
        if (trained.Summary.Interrupted) throw new OperationCanceledException($"{method.Label} was interrupted; run the same command again to resume");
        var mixer = trained.Mixer;
        mixer.SetRouting(inference ?? mixer.Config.InferenceRouting);
        long trainable = mixer.RouterParameters().Sum(p => p.Value.numel()) + (settings.Loss.Beta > 0 ? mixer.ExpertParameterCount() : 0);
        var scores = Evaluate(trained.Model, null, mixer.SetDecisionPositions);
        var routing = trained.Statistics.ToJson();
        if (Data.HeldOut(_tokenizer, _recipe.MaxLength) is { Count: > 0 } heldOut)
            routing["held_out"] = MixerTrainingJob.CollectStatistics(mixer, heldOut, Tasks, 32).ToJson();
        var budget = FullBudget(mixer.ExpertParameterCount() + mixer.RouterParameters().Sum(p => p.Value.numel()), ParameterCount(trained.Model));
        var logs = new Dictionary<string, string> { ["stage 1 experts"] = LogPath("stage1"), [method.Label] = LogPath(method.Id) };
        WriteResult(resultPath, method, scores, trainable, budget, routing, new JsonObject(), logs, clock.Elapsed.TotalSeconds);
        _manifest.AddStep($"seed-{_seed}/{method.Id}", clock.Elapsed.TotalSeconds);
    }

    /// <summary>Stage 1 (one expert per task, hard routing), trained once per seed and kept in <c>experts/</c>.</summary>
    private void EnsureExperts()
    {
        if (File.Exists(Path.Combine(ExpertsDir, "mixer_config.json"))) return;
        var clock = Stopwatch.StartNew();
        _log($"seed {_seed}, stage 1: one expert per task (hard routing)");
        var summary = _pipeline.TrainExperts(Data.Train, Tasks,
            new ExpertTraining { Expert = ExpertConfig(), Training = Settings("stage1", _recipe.Stage1Steps, _recipe.Lr) }, ExpertsDir);
        if (summary is { Interrupted: true }) throw new OperationCanceledException("stage 1 experts was interrupted; run the same command again to resume");
        _manifest.AddStep($"seed-{_seed}/stage1", clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// How a router method trains (null for the others): its paradigm, stage-2 settings and, when it differs
    /// from the mixer's top-k, its inference routing.
    /// </summary>
    private (Paradigm Paradigm, RouterTraining Settings, RoutingSettings? Inference)? RouterMethod(string id)
    {
        var preset = _recipe.Preset();
        var rsl = new RoutingLossSettings(Supervision: preset.Supervision); // α 0.01, λ 0.01, sign +1, warm-up 10%
        RouterTraining Stage2(RouterPreset p, RoutingLossSettings loss, double lr) => new()
        {
            Preset = p, Loss = loss, TopK = _recipe.TopK, Training = Settings(id, _recipe.Stage2Steps, lr), // stage 1 + stage 2 = the recipe's TotalSteps
        };
        // The recipe's router_lr applies to its own preset; the paper row keeps the paper preset's rate.
        double RouterLr(RouterPreset p) => p.Name == _recipe.RouterPreset ? _recipe.RouterLr : p.Stage2LearningRate;
        return id switch
        {
            "mixer-joint" => (Paradigm.Joint, Stage2(preset, rsl with { Beta = 1.0 }, _recipe.Lr), null),
            "mixer-pnp" => (Paradigm.PlugAndPlay, Stage2(preset, rsl, RouterLr(preset)), null),
            "mixer-pnp-paper" => (Paradigm.PlugAndPlay, Stage2(RouterPreset.Paper, new RoutingLossSettings(), RouterLr(RouterPreset.Paper)), null),
            "rsl-none" => (Paradigm.PlugAndPlay, Stage2(preset, RoutingLossSettings.None with { Supervision = preset.Supervision }, RouterLr(preset)), null),
            "rsl-balance" => (Paradigm.PlugAndPlay, Stage2(preset, rsl with { Lambda = 0 }, RouterLr(preset)), null),
            "rsl-entropy-neg" => (Paradigm.PlugAndPlay, Stage2(preset, rsl with { EntropySign = -1 }, RouterLr(preset)), null),
            _ => null,
        };
    }

    /// <summary>The experts' LoRA; no targets = the model's default targets (docs/method.md §1).</summary>
    private LoraConfig ExpertConfig(ICausalLM? model = null) => new()
    {
        R = _recipe.Rank, LoraAlpha = 2 * _recipe.Rank, TargetModules = model is null ? [] : TargetLinears.DefaultTargets(model),
        BaseModelNameOrPath = _baseDir, LoraDropout = 0.0,
    };

    private FineTuneSettings Settings(string stage, int steps, double lr) => new()
    {
        MaxLength = _recipe.MaxLength,
        BatchSize = _recipe.BatchSize,
        EvalFraction = 0.05,
        MaxEvalExamples = 64,
        Trainer = new TrainerOptions
        {
            MaxSteps = steps, LearningRate = lr, WarmupRatio = 0.05, MinLearningRateRatio = 0.1, Seed = _seed,
            EvalEvery = Math.Max(10, steps / 5), CheckpointEvery = Math.Max(10, steps / 4), OutputDir = Path.Combine(_dir, "training", stage),
            Resume = true, // an interrupted run continues from its last checkpoint
        },
    };

    private void Train(string title, Func<IProgress<TrainingProgress>, CancellationToken, TrainingSummary> work)
    {
        var summary = _host($"seed {_seed}: {title}", work);
        if (summary.Interrupted) throw new OperationCanceledException($"{title} was interrupted; run the same command again to resume");
    }

    private string ResultKey(string method) => ExperimentCache.ResultKey(_manifest.CacheKey, method, _seed);

    private string LogPath(string stage) => Path.GetRelativePath(Path.GetDirectoryName(_dir)!, Path.Combine(_dir, "training", stage, "train_log.jsonl"));

    private int IndexOf(string task) => Tasks.ToList().IndexOf(task);

    /// <summary>Scores every task; <paramref name="beforeTask"/> prepares the model for a task (the oracle's expert).</summary>
    private Dictionary<string, ScoreMeasurement> Evaluate(ICausalLM model, Action<string>? beforeTask, Action<Tensor?>? promptEnds = null)
    {
        var scores = new Dictionary<string, ScoreMeasurement>();
        foreach (var task in Tasks)
        {
            beforeTask?.Invoke(task);
            scores[task] = Data.Score(task, model, _tokenizer, promptEnds);
            _log($"  {task}: {scores[task].Metric} {scores[task].Value:F1} (n={scores[task].N})");
        }
        return scores;
    }

    /// <summary>
    /// The budget of a method that trains <see cref="ExperimentRecipe.TotalSteps"/> (stage 1 + stage 2, or the
    /// same number of steps in one stage) of <see cref="ExperimentRecipe.BatchSize"/>.
    /// </summary>
    private MethodBudget FullBudget(long trained, long total) =>
        new(_recipe.TotalSteps, (long)_recipe.TotalSteps * _recipe.BatchSize, trained, total);

    /// <summary>The budget of a method that uses the stage-1 experts without a stage 2 of its own.</summary>
    private MethodBudget Stage1Budget(long trained, long total) =>
        new(_recipe.Stage1Steps, (long)_recipe.Stage1Steps * _recipe.BatchSize, trained, total);

    /// <summary>Values held by <paramref name="model"/> (base and whatever is attached to it).</summary>
    private static long ParameterCount(ICausalLM model) =>
        model is TorchSharp.torch.nn.Module m ? m.parameters().Sum(p => p.numel()) : 0;

    private void WriteResult(string path, ExperimentMethod method, IReadOnlyDictionary<string, ScoreMeasurement> scores, long trainable,
        MethodBudget budget, JsonObject? routing, JsonObject extra, IReadOnlyDictionary<string, string> logs, double seconds)
    {
        double tokens = scores.Values.Sum(s => s.TokensPerSecond * s.Seconds), evalSeconds = scores.Values.Sum(s => s.Seconds);
        var taskScores = new JsonObject();
        foreach (var (task, s) in scores)
            taskScores[task] = new JsonObject
            {
                ["metric"] = s.Metric, ["value"] = Math.Round(s.Value, 3), ["n"] = s.N,
                ["ci95"] = new JsonArray(Math.Round(s.Lower, 3), Math.Round(s.Upper, 3)),
                ["items"] = ItemsJson(s.Items),
            };
        var json = new JsonObject
        {
            ["method"] = method.Id,
            ["cache_key"] = ResultKey(method.Id),
            ["label"] = method.Label,
            ["group"] = method.Group,
            ["seed"] = _seed,
            ["trainable_params"] = trainable,
            ["budget"] = budget.ToJson(),
            ["tokens_per_second"] = Math.Round(tokens / Math.Max(1e-9, evalSeconds), 1),
            ["seconds"] = Math.Round(seconds, 1),
            ["scores"] = taskScores,
            ["train_logs"] = new JsonObject(logs.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))),
        };
        if (routing is not null) json["routing"] = routing;
        foreach (var (key, value) in extra.ToArray())
        {
            extra.Remove(key);
            json[key] = value;
        }
        var bytes = Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.Write(path, s => s.Write(bytes));
    }

    // Per-item outcomes as parallel arrays (read back by MethodResult), for the report's paired statistics.
    private static JsonObject? ItemsJson(IReadOnlyList<ItemOutcome> items)
    {
        if (items.Count == 0) return null;
        static JsonArray Array<T>(IEnumerable<T> values) => new(values.Select(v => JsonValue.Create(v)).ToArray<JsonNode?>());
        var json = new JsonObject { ["index"] = Array(items.Select(i => i.Index)), ["score"] = Array(items.Select(i => i.Score)) };
        if (items.All(i => i.Predicted is not null && i.Gold is not null))
        {
            json["predicted"] = Array(items.Select(i => i.Predicted!.Value));
            json["gold"] = Array(items.Select(i => i.Gold!.Value));
        }
        return json;
    }
}
