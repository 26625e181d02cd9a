using System.Globalization;
using System.Text.Json.Nodes;
using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// The two-stage LoRA-Mixer pipeline, in one place for the CLI, the experiment runner and the demo
/// (docs/method.md §5–§6). <see cref="TrainExperts"/> is stage 1 of the <see cref="Paradigm.Joint"/> paradigm:
/// one expert per task with hard routing, saved as a mixer folder. <see cref="TrainRouters"/> is stage 2 of
/// both paradigms: it loads the experts (<see cref="ExpertSource"/>), starts fresh routers of the chosen design,
/// trains them with the Routing Specialization Loss, records every setting in <c>mixer_config.json</c> and
/// saves. Stage 2 always starts from the saved stage-1 folder, so a resumed run continues exactly as an
/// uninterrupted one; every stage refuses to resume with other settings or data.
/// </summary>
/// <param name="baseModelDir">The frozen base model's folder.</param>
/// <param name="tokenizer">Its tokenizer.</param>
/// <param name="device">Where the model runs.</param>
/// <param name="host">Runs each training stage under the caller's progress display.</param>
/// <param name="log">Receives one line per decision the caller should know of (e.g. a reused stage 1).</param>
/// <param name="settingNames">
/// How refused resumes name settings (e.g. <c>lora_alpha</c> → <c>--alpha</c>, <c>LearningRate</c> →
/// <c>--stage2-lr</c>); the CLI passes its flags. Stage-specific names are prefixed <c>stage1.</c> or <c>stage2.</c>.
/// </param>
public sealed class MixerPipeline(string baseModelDir, ITokenizer tokenizer, Device device, TrainingHost host,
    Action<string>? log = null, IReadOnlyDictionary<string, string>? settingNames = null)
{
    private readonly string _baseDir = Path.GetFullPath(baseModelDir);

    /// <summary>
    /// Stage 1: one expert per task in <paramref name="tasks"/>, each trained on its own task's records with
    /// hard routing, saved as a mixer folder in <paramref name="stage1Dir"/> with the settings it was trained
    /// with. When the folder already holds a stage 1 and the training resumes
    /// (<see cref="TrainerOptions.Resume"/>), it is reused if its settings and data are the same and refused,
    /// naming the first difference, if not. Returns null when reused, else the summary (when it says
    /// <see cref="TrainingSummary.Interrupted"/> nothing was saved).
    /// </summary>
    public TrainingSummary? TrainExperts(IReadOnlyList<TrainingRecord> records, IReadOnlyList<string> tasks, ExpertTraining settings, string stage1Dir)
    {
        if (settings.Expert.TargetModules.Count == 0 && settings.Expert.TargetModulesRegex is null) // the family's default (docs/method.md §1)
            settings = settings with { Expert = settings.Expert with { TargetModules = ModelFamilies.ForModelFolder(_baseDir).DefaultTargets } };
        settings.Training.Validate();
        settings.Expert.Validate("the expert settings");
        var recorded = Stage1Settings(records, tasks, settings);
        if (settings.Training.Trainer.Resume && File.Exists(Path.Combine(stage1Dir, "mixer_config.json")))
        {
            CheckSameStage1(stage1Dir, recorded);
            log?.Invoke($"stage 1: already finished ({stage1Dir}); skipping to stage 2");
            return null;
        }
        using var model = ModelLoader.LoadCausalLM(_baseDir, device);
        var (architecture, hidden, layers) = ModelStructure.Describe(model);
        var config = new MixerConfig
        {
            BaseModel = _baseDir, Architecture = architecture, HiddenSize = hidden, NumHiddenLayers = layers,
            Targets = settings.Expert.TargetModules,
            Experts = tasks.Select(t => new MixerExpert(t, "experts/" + t)).ToArray(),
            // Stage 1 routes hard; the folder's top-k is only a valid placeholder until stage 2 sets the mixer's.
            TopK = Math.Min(RoutingSettings.DefaultTopK, tasks.Count),
        };
        LoraMixerModel? trained = null;
        var training = settings.Training with { Trainer = settings.Training.Trainer with { SettingNames = Names("stage1") } };
        var summary = host("stage 1 (experts, hard routing)", (progress, ct) =>
        {
            var (mixer, s) = MixerTrainingJob.TrainExperts(model, tokenizer, records, tasks, settings.Expert, config, training, progress, ct);
            trained = mixer;
            return s;
        });
        using (trained)
        {
            if (summary.Interrupted) return summary;
            var record = (JsonObject)recorded.DeepClone();
            record["steps"] = summary.Steps;
            record["final_loss"] = summary.FinalLoss;
            trained!.SetTrainingRecord(new JsonObject { ["stage1"] = record });
            MixerCheckpoint.Save(trained, stage1Dir);
        }
        return summary;
    }

    /// <summary>
    /// Stage 2 of <paramref name="paradigm"/>: the experts of <paramref name="experts"/> under fresh routers of
    /// <paramref name="settings"/>' design, trained on <paramref name="records"/> (whose tasks, when they name
    /// experts, supervise the routers). Joint needs the stage-1 folder and trains the experts too when β &gt; 0;
    /// plug-and-play keeps them frozen. The mixer is saved to <paramref name="outDir"/> (when given) with its
    /// training record (<paramref name="extraRecord"/> added to it) and returned set to inference routing;
    /// the caller disposes it. When the summary says interrupted, nothing was saved.
    /// </summary>
    public TrainedMixer TrainRouters(Paradigm paradigm, ExpertSource experts, IReadOnlyList<TrainingRecord> records,
        IReadOnlyList<string> tasks, RouterTraining settings, string? outDir, JsonObject? extraRecord = null)
    {
        if (paradigm == Paradigm.Joint && experts.MixerDir is null)
            throw new ArgumentException("joint stage 2 continues from the stage-1 experts' folder, not from separate adapters");
        if (paradigm == Paradigm.PlugAndPlay && settings.Loss.Beta > 0)
            throw new ArgumentException("β (--beta) > 0 trains the experts in stage 2, which only joint training does; plug-and-play experts stay frozen (set it to 0)");
        var names = experts.Names;
        settings.Validate(names.Count);
        bool trainExperts = paradigm == Paradigm.Joint && settings.Loss.Beta > 0;

        var model = ModelLoader.LoadCausalLM(_baseDir, device);
        LoraMixerModel? mixer = null;
        try
        {
            MixerConfig Design(MixerConfig c) => c with
            {
                RouterScope = settings.Scope, TopK = settings.TopK, Renormalize = true, RouterTemperature = settings.Temperature,
                RouterInput = settings.Preset.Input, RouterInputNorm = settings.Preset.InputNorm, RoutingGranularity = settings.Preset.Granularity,
            };
            mixer = experts.MixerDir is string dir ? MixerCheckpoint.Load(model, dir, Design) : FromAdapters(model, experts, Design);
            var training = settings.Training with { Trainer = settings.Training.Trainer with { SettingNames = Names("stage2") } };
            RoutingStatistics? statistics = null;
            var summary = host($"stage 2 ({Spell(paradigm)}): routers", (progress, ct) =>
            {
                var (s, st) = MixerTrainingJob.TrainRouters(mixer, tokenizer, records, tasks, settings.Routing, settings.Loss,
                    trainExperts, training, progress, ct);
                statistics = st;
                return s;
            });
            if (!summary.Interrupted)
            {
                mixer.SetTrainingRecord(Record(paradigm, experts, mixer.Config.Training, records, settings, trainExperts, summary, extraRecord));
                if (outDir is not null) MixerCheckpoint.Save(mixer, outDir);
            }
            mixer.SetRouting(mixer.Config.InferenceRouting);
            return new TrainedMixer(model, mixer, summary, statistics!);
        }
        catch
        {
            mixer?.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <summary>The command-line spelling of a paradigm, as mixer_config.json records it.</summary>
    public static string Spell(Paradigm paradigm) => paradigm == Paradigm.Joint ? "joint" : "plug_and_play";

    private LoraMixerModel FromAdapters(ICausalLM model, ExpertSource source, Func<MixerConfig, MixerConfig> design)
    {
        var adapters = new List<PeftAdapter>();
        var paths = source.Adapters;
        try
        {
            foreach (var (name, path) in paths) adapters.Add(PeftAdapter.Load(path, name));
            // The union of the adapters' modules unless the caller narrows it; what a narrower choice leaves out is said.
            var chosen = PlugAndPlayTargets.Select(model, adapters, source.Targets);
            if (chosen.DroppedSummary is string dropped) log?.Invoke(dropped);
            var (architecture, hidden, layers) = ModelStructure.Describe(model);
            var config = design(new MixerConfig
            {
                BaseModel = _baseDir, Architecture = architecture, HiddenSize = hidden, NumHiddenLayers = layers,
                Targets = chosen.Targets,
                Experts = paths.Select(p => new MixerExpert(p.Name, "experts/" + p.Name)).ToArray(),
            });
            return MixerCheckpoint.FromAdapters(model, config, adapters);
        }
        finally
        {
            foreach (var a in adapters) a.Dispose();
        }
    }

    private IReadOnlyDictionary<string, string>? Names(string stage) =>
        settingNames is null ? null : settingNames
            .Where(kv => !kv.Key.Contains('.') || kv.Key.StartsWith(stage + ".", StringComparison.Ordinal))
            .GroupBy(kv => kv.Key.StartsWith(stage + ".", StringComparison.Ordinal) ? kv.Key[(stage.Length + 1)..] : kv.Key)
            .ToDictionary(g => g.Key, g => g.OrderByDescending(kv => kv.Key.Length).First().Value);

    private static JsonObject Stage1Settings(IReadOnlyList<TrainingRecord> records, IReadOnlyList<string> tasks, ExpertTraining s) => new()
    {
        ["data"] = RecordsFingerprint.Of(records),
        ["samples"] = records.Count,
        ["tasks"] = string.Join(",", tasks),
        ["r"] = s.Expert.R,
        ["lora_alpha"] = s.Expert.LoraAlpha,
        ["lora_dropout"] = s.Expert.LoraDropout,
        ["targets"] = string.Join(",", s.Expert.TargetModules),
        ["epochs"] = s.Training.Trainer.MaxSteps is null ? s.Training.Trainer.Epochs : null,
        ["max_steps"] = s.Training.Trainer.MaxSteps,
        ["lr"] = s.Training.Trainer.LearningRate,
        ["batch_size"] = s.Training.BatchSize,
        ["max_length"] = s.Training.MaxLength,
        ["seed"] = s.Training.Trainer.Seed,
    };

    /// <summary>Refuses a stage-1 folder trained with other settings or data, naming the first difference.</summary>
    private void CheckSameStage1(string stage1Dir, JsonObject now)
    {
        var saved = MixerConfig.Load(stage1Dir).Training["stage1"] as JsonObject;
        foreach (var (key, value) in now)
        {
            string after = Text(value), before = saved is null ? "(not recorded)" : Text(saved[key]);
            if (before == after) continue;
            string name = Names("stage1")?.GetValueOrDefault(key) ?? key;
            throw new ArgumentException(
                $"cannot reuse stage 1 in {stage1Dir}: {name} was {before} and is now {after}; resume with the settings and data of the first run, or start afresh in another output folder");
        }
    }

    private static string Text(JsonNode? node) => node switch
    {
        null => "(unset)",
        JsonValue v when v.TryGetValue(out double d) => d.ToString("R", CultureInfo.InvariantCulture),
        _ => node.ToJsonString().Trim('"'),
    };

    private static JsonObject Record(Paradigm paradigm, ExpertSource experts, JsonObject stage1, IReadOnlyList<TrainingRecord> records,
        RouterTraining s, bool trainExperts, TrainingSummary summary, JsonObject? extra)
    {
        var record = new JsonObject { ["paradigm"] = Spell(paradigm) };
        foreach (var (key, value) in stage1) record[key] = value?.DeepClone();
        if (experts.Adapters.Count > 0)
            record["experts"] = new JsonObject(experts.Adapters.Select(e => KeyValuePair.Create(e.Name, (JsonNode?)JsonValue.Create(Path.GetFullPath(e.Path)))));
        else if (paradigm == Paradigm.PlugAndPlay)
            record["experts_from"] = experts.MixerDir;
        var trainer = s.Training.Trainer;
        record["stage2"] = new JsonObject
        {
            ["data"] = RecordsFingerprint.Of(records),
            ["samples"] = records.Count,
            ["epochs"] = trainer.MaxSteps is null ? trainer.Epochs : null,
            ["max_steps"] = trainer.MaxSteps,
            ["lr"] = trainer.LearningRate,
            ["batch_size"] = s.Training.BatchSize,
            ["max_length"] = s.Training.MaxLength,
            ["seed"] = trainer.Seed,
            ["preset"] = s.Preset.Name,
            ["routing"] = RouterPreset.Spell(s.Preset.Stage2Routing),
            ["top_k"] = s.TopK,
            ["temperature"] = s.Temperature,
            ["router_scope"] = s.Scope == RouterScope.Projection ? "projection" : "block",
            ["router_input"] = RouterPreset.Spell(s.Preset.Input),
            ["router_input_norm"] = RouterPreset.Spell(s.Preset.InputNorm),
            ["routing_granularity"] = RouterPreset.Spell(s.Preset.Granularity),
            ["rsl_alpha"] = s.Loss.Alpha,
            ["rsl_lambda"] = s.Loss.Lambda,
            ["entropy_sign"] = s.Loss.EntropySign,
            ["rsl_warmup"] = s.Loss.WarmupRatio,
            ["router_supervision"] = s.Loss.Supervision,
            ["beta"] = s.Loss.Beta,
            ["train_experts"] = trainExperts,
            ["steps"] = summary.Steps,
            ["final_loss"] = summary.FinalLoss,
        };
        foreach (var (key, value) in extra ?? new JsonObject()) record[key] = value?.DeepClone();
        return record;
    }
}
