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
        JsonObject? routing = null;
        long trainable = 0;
        Dictionary<string, ScoreMeasurement> scores;
        switch (method.Id)
        {
            case "base":
                scores = Evaluate(model, null);
                break;
            case "oracle":
            {
                using var mixer = MixerCheckpoint.Load(model, ExpertsDir);
                mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
                trainable = mixer.ExpertParameterCount() / Tasks.Count;
                logs["stage 1 experts"] = LogPath("stage1");
                scores = Evaluate(model, task => mixer.SetHardExperts(tensor(new long[] { IndexOf(task) })));
                break;
            }
            case "merge":
            {
                using var mixer = MixerCheckpoint.Load(model, ExpertsDir);
                mixer.SetRouting(new RoutingSettings(RoutingMode.Soft)); // zero routers: every expert weighted 1/E
                scores = Evaluate(model, null);
                break;
            }
            case "lorahub":
            {
                using var mixer = MixerCheckpoint.Load(model, ExpertsDir);
                var encoder = new ExampleEncoder(_tokenizer, _recipe.MaxLength, Tasks);
                var few = Tasks.SelectMany(t => Data.TrainByTask[t].Take(5)).Select(encoder.Encode).ToArray();
                var weights = LoraHub.Fit(mixer, few, _tokenizer.EosId ?? 0);
                _log($"  LoRAHub weights: {string.Join(", ", Tasks.Select((t, i) => $"{t} {weights[i]:F2}"))}");
                trainable = Tasks.Count;
                scores = Evaluate(model, _ => mixer.SetHardExperts(tensor(new long[] { 0 })));
                break;
            }
            case "multitask":
            {
                var config = ExpertConfig(model) with { R = _recipe.Rank * Tasks.Count, LoraAlpha = 2 * _recipe.Rank * Tasks.Count };
                PeftAdapter? adapter = null;
                Train(method.Label, (p, ct) =>
                {
                    var (a, s) = LoraTrainingJob.Run(model, _tokenizer, Data.Train, config, "multitask", Settings("multitask", _recipe.Stage1Steps, _recipe.Lr), p, ct);
                    adapter = a;
                    return s;
                });
                using var trained = adapter!;
                trained.Save(Path.Combine(_dir, "adapters", "multitask"));
                trainable = trained.Modules.Values.Sum(w => w.A.numel() + w.B.numel());
                logs["multi-task LoRA"] = LogPath("multitask");
                scores = Evaluate(model, null);
                break;
            }
            case "mixlora":
            {
                MixLora mix;
                try
                {
                    mix = MixLora.Attach(model, Tasks.Count, _recipe.Rank, _recipe.TopK, _seed);
                }
                catch (NotSupportedException e) // a family without MLPs (Mamba)
                {
                    _log($"  skipped: {e.Message}");
                    return;
                }
                using var mixLora = mix;
                Train(method.Label, (p, ct) => mix.Train(_tokenizer, Data.Train, Settings("mixlora", _recipe.Stage1Steps, _recipe.Lr), p, ct));
                trainable = mix.ParameterCount;
                logs["MixLoRA"] = LogPath("mixlora");
                scores = Evaluate(model, null);
                break;
            }
            default:
                throw new ArgumentException($"no way to run method '{method.Id}'");
        }
        WriteResult(resultPath, method, scores, trainable, routing, logs, clock.Elapsed.TotalSeconds);
        _manifest.AddStep($"seed-{_seed}/{method.Id}", clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// A method that trains routers over the stage-1 experts (LoRA-Mixer in both paradigms, its ablations and
    /// MoLE): stage 2 of <see cref="MixerPipeline"/>, then every task scored with the trained mixer.
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
        WriteResult(resultPath, method, scores, trainable, routing, new Dictionary<string, string> { [method.Label] = LogPath(method.Id) }, clock.Elapsed.TotalSeconds);
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
            Preset = p, Loss = loss, TopK = _recipe.TopK, Training = Settings(id, _recipe.Stage2Steps, lr),
        };
        // The recipe's router_lr applies to its own preset; the paper row keeps the paper preset's rate.
        double RouterLr(RouterPreset p) => p.Name == _recipe.RouterPreset ? _recipe.RouterLr : p.Stage2LearningRate;
        // MoLE is its own router: the token's hidden state, dense gates at inference too, balance loss only.
        var mole = RouterPreset.Paper with { Name = "mole" };
        return id switch
        {
            "mole" => (Paradigm.PlugAndPlay, Stage2(mole, new RoutingLossSettings() with { Lambda = 0, WarmupRatio = 0 }, _recipe.RouterLr), new RoutingSettings(RoutingMode.Soft)),
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

    private void WriteResult(string path, ExperimentMethod method, IReadOnlyDictionary<string, ScoreMeasurement> scores, long trainable,
        JsonObject? routing, IReadOnlyDictionary<string, string> logs, double seconds)
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
            ["tokens_per_second"] = Math.Round(tokens / Math.Max(1e-9, evalSeconds), 1),
            ["seconds"] = Math.Round(seconds, 1),
            ["scores"] = taskScores,
            ["train_logs"] = new JsonObject(logs.Select(l => KeyValuePair.Create(l.Key, (JsonNode?)l.Value))),
        };
        if (routing is not null) json["routing"] = routing;
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
