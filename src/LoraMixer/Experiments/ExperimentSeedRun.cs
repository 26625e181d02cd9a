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
    private ExperimentTasks? _data;

    public ExperimentSeedRun(ExperimentRecipe recipe, int seed, string dir, string baseDir, ITokenizer tokenizer, Device device,
        TrainingHost host, Action<string> log, ExperimentManifest manifest, EvalDataLocator? locator)
    {
        (_recipe, _seed, _dir, _baseDir, _tokenizer, _device) = (recipe, seed, dir, baseDir, tokenizer, device);
        (_host, _log, _manifest, _locator) = (host, log, manifest, locator);
    }

    private ExperimentTasks Data => _data ??= new ExperimentTasks(_recipe, _seed, _locator, m => _log("warning: " + m));
    private string ExpertsDir => Path.Combine(_dir, "experts");
    private IReadOnlyList<string> Tasks => _recipe.Tasks;

    /// <summary>Runs <paramref name="methodId"/> unless its result exists.</summary>
    public void Run(string methodId)
    {
        var method = ExperimentMethods.Get(methodId);
        string resultPath = Path.Combine(_dir, "results", method.Id + ".json");
        if (File.Exists(resultPath))
        {
            _log($"seed {_seed}, {method.Label}: done before (cached)");
            return;
        }
        var clock = Stopwatch.StartNew();
        if (method.NeedsExperts) EnsureExperts();
        _log($"seed {_seed}, {method.Label}");
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
                trainable = trained.Modules.Values.Sum(w => w.A.numel() + w.B.numel());
                logs["multi-task LoRA"] = LogPath("multitask");
                scores = Evaluate(model, null);
                break;
            }
            case "mixlora":
            {
                if (model is not Models.Llama.LlamaForCausalLM)
                {
                    _log($"  skipped: MixLoRA puts its experts in the MLP, which {ModelStructure.Describe(model).Architecture} blocks do not have");
                    return;
                }
                using var mix = MixLora.Attach(model, Tasks.Count, _recipe.Rank, _recipe.TopK, _seed);
                Train(method.Label, (p, ct) => mix.Train(_tokenizer, Data.Train, Settings("mixlora", _recipe.Stage1Steps, _recipe.Lr), p, ct));
                trainable = mix.ParameterCount;
                logs["MixLoRA"] = LogPath("mixlora");
                scores = Evaluate(model, null);
                break;
            }
            default: // routers over the stage-1 experts: MoLE, LoRA-Mixer (both paradigms) and the RSL ablation
            {
                var (rsl, trainExperts, routingMode, preset) = RouterTraining(method.Id);
                using var mixer = MixerCheckpoint.Load(model, ExpertsDir, c => c with { RouterInput = preset.Input, RouterInputNorm = preset.InputNorm, RoutingGranularity = preset.Granularity });
                RoutingStatistics? stats = null;
                // The recipe's router_lr applies to its own preset; the paper row keeps the paper preset's rate.
                double routerLr = preset.Name == _recipe.RouterPreset ? _recipe.RouterLr : preset.Stage2LearningRate;
                Train(method.Label, (p, ct) =>
                {
                    var (s, st) = MixerTrainingJob.TrainRouters(mixer, _tokenizer, Data.Stage2, Tasks, new RoutingSettings(preset.Stage2Routing, mixer.Config.TopK),
                        rsl, trainExperts, Settings(method.Id, _recipe.Stage2Steps, trainExperts ? _recipe.Lr : routerLr), p, ct);
                    stats = st;
                    return s;
                });
                mixer.SetTrainingRecord(new JsonObject
                {
                    ["method"] = method.Id, ["seed"] = _seed, ["stage2_samples"] = Data.Stage2.Count, ["stage2_steps"] = _recipe.Stage2Steps,
                    ["rsl_alpha"] = rsl.Alpha, ["rsl_lambda"] = rsl.Lambda, ["entropy_sign"] = rsl.EntropySign, ["beta"] = rsl.Beta,
                    ["preset"] = preset.Name, ["router_supervision"] = rsl.Supervision,
                });
                MixerCheckpoint.Save(mixer, Path.Combine(_dir, "mixers", method.Id));
                logs[method.Label] = LogPath(method.Id);
                routing = stats!.ToJson();
                trainable = mixer.RouterParameters().Sum(p => p.Value.numel()) + (trainExperts ? mixer.ExpertParameterCount() : 0);
                mixer.SetRouting(routingMode ?? mixer.Config.InferenceRouting);
                scores = Evaluate(model, null, mixer.SetDecisionPositions);
                break;
            }
        }
        WriteResult(resultPath, method, scores, trainable, routing, logs, clock.Elapsed.TotalSeconds);
        _manifest.AddStep($"seed-{_seed}/{method.Id}", clock.Elapsed.TotalSeconds);
    }

    /// <summary>Stage 1 (one expert per task, hard routing), trained once per seed and kept in <c>experts/</c>.</summary>
    private void EnsureExperts()
    {
        if (File.Exists(Path.Combine(ExpertsDir, "mixer_config.json"))) return;
        var clock = Stopwatch.StartNew();
        _log($"seed {_seed}, stage 1: one expert per task (hard routing)");
        using var model = ModelLoader.LoadCausalLM(_baseDir, _device);
        var (_, hidden, layers) = ModelStructure.Describe(model);
        var config = new MixerConfig
        {
            BaseModel = _baseDir, Architecture = ModelStructure.Describe(model).Architecture, HiddenSize = hidden, NumHiddenLayers = layers,
            Targets = TargetLinears.DefaultTargets(model), TopK = _recipe.TopK,
            Experts = Tasks.Select(t => new MixerExpert(t, "experts/" + t)).ToArray(),
        };
        LoraMixerModel? mixer = null;
        Train("stage 1 experts", (p, ct) =>
        {
            var (m, s) = MixerTrainingJob.TrainExperts(model, _tokenizer, Data.Train, Tasks, ExpertConfig(model), config,
                Settings("stage1", _recipe.Stage1Steps, _recipe.Lr), p, ct);
            mixer = m;
            return s;
        });
        using (mixer) MixerCheckpoint.Save(mixer!, ExpertsDir);
        _manifest.AddStep($"seed-{_seed}/stage1", clock.Elapsed.TotalSeconds);
    }

    private (RoutingLossSettings Rsl, bool TrainExperts, RoutingSettings? Inference, RouterPreset Preset) RouterTraining(string id)
    {
        var preset = RouterPreset.Parse(_recipe.RouterPreset);
        var rsl = new RoutingLossSettings(Supervision: preset.Supervision); // α 0.01, λ 0.01, sign +1, warm-up 10%
        // MoLE is its own router: the token's hidden state, dense gates, balance loss only.
        var mole = RouterPreset.Paper with { Name = "mole" };
        return id switch
        {
            "mole" => (new RoutingLossSettings() with { Lambda = 0, WarmupRatio = 0 }, false, new RoutingSettings(RoutingMode.Soft), mole with { Stage2LearningRate = _recipe.RouterLr }),
            "mixer-joint" => (rsl with { Beta = 1.0 }, true, null, preset),
            "mixer-pnp" => (rsl, false, null, preset),
            "mixer-pnp-paper" => (new RoutingLossSettings(), false, null, RouterPreset.Paper),
            "rsl-none" => (RoutingLossSettings.None with { Supervision = preset.Supervision }, false, null, preset),
            "rsl-balance" => (rsl with { Lambda = 0 }, false, null, preset),
            "rsl-entropy-neg" => (rsl with { EntropySign = -1 }, false, null, preset),
            _ => throw new ArgumentException($"no router training defined for method '{id}'"),
        };
    }

    private LoraConfig ExpertConfig(ICausalLM model) => new()
    {
        R = _recipe.Rank, LoraAlpha = 2 * _recipe.Rank, TargetModules = TargetLinears.DefaultTargets(model),
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
            };
        var json = new JsonObject
        {
            ["method"] = method.Id,
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
}
