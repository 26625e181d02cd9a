using System.Globalization;
using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Models;
using LoraMixer.Runtime;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// The two training stages of the LoRA-Mixer (docs/method.md §6): stage 1 trains one expert per task with hard
/// routing; stage 2 trains the routers (and optionally the experts, with preservation) with soft or
/// straight-through routing and the Routing Specialization Loss.
/// </summary>
public static class MixerTrainingJob
{
    /// <summary>
    /// Stage 1 of the joint paradigm: attaches a mixer with one fresh expert per task (all with
    /// <paramref name="expertConfig"/>) and trains every expert on its own task's samples only.
    /// </summary>
    public static (LoraMixerModel Mixer, TrainingSummary Summary) TrainExperts(ICausalLM model, ITokenizer tokenizer,
        IReadOnlyList<TrainingRecord> records, IReadOnlyList<string> tasks, LoraConfig expertConfig, MixerConfig mixerConfig,
        FineTuneSettings settings, IProgress<TrainingProgress>? progress = null, CancellationToken ct = default)
    {
        settings.Validate();
        // The experts are stacked in one tensor per projection; decoupled weight decay would shrink the rows of
        // experts that got no sample this step, so one task's batches would move another's expert.
        if (settings.Trainer.WeightDecay != 0)
            throw new ArgumentException($"stage 1 trains each expert on its own task only, which weight decay ({settings.Trainer.WeightDecay}) would break: it shrinks every expert at every step; use 0");
        var data = EncodedData.Create(tokenizer, records, settings, tasks);
        if (data.Train.Any(e => e.TaskIndex < 0))
            throw new Errors.DataFormatException($"stage 1 needs a \"task\" on every line (line {data.Train.First(e => e.TaskIndex < 0).Line} has none)");
        using (manual_seed(settings.Trainer.Seed)) { }
        var mixer = LoraMixerModel.Attach(model, mixerConfig, Enumerable.Repeat(expertConfig, tasks.Count).ToArray(), dropout: expertConfig.LoraDropout);
        mixer.InitializeExperts();
        mixer.SetTrainable(routers: false, experts: true);
        mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
        var objective = new CausalLmObjective(model, mixer.ExpertParameters(), data.Train, data.Eval, settings.BatchSize,
            settings.Trainer.Seed, tokenizer.EosId ?? 0)
        {
            BeforeForward = batch => mixer.SetHardExperts(batch.TaskIds),
            SetTraining = mixer.Train,
            // Each expert clipped by its own gradient norm, as if trained alone (docs/method.md §4).
            ClipGradientsBy = GradientClipping.ClipPerExpert,
        };
        var trainer = new Trainer(settings.Trainer with { TrajectorySettings = Trajectory(settings, "stage1", tasks, records, mixerConfig, expertConfig) }, objective);
        var summary = trainer.Run(progress, ct);
        mixer.Train(false);
        mixer.SetHardExperts(null);
        mixer.SetTrainable(false, false);
        mixer.SetRouting(mixerConfig.InferenceRouting);
        return (mixer, summary);
    }

    /// <summary>
    /// Stage 2: trains the routers of <paramref name="mixer"/> with <paramref name="routing"/> (soft or
    /// straight-through) and the RSL; with <paramref name="trainExperts"/> the experts train too, held near
    /// their start by the preservation weight β. Returns routing statistics on the held-out part.
    /// </summary>
    public static (TrainingSummary Summary, RoutingStatistics Statistics) TrainRouters(LoraMixerModel mixer, ITokenizer tokenizer,
        IReadOnlyList<TrainingRecord> records, IReadOnlyList<string> tasks, RoutingSettings routing, RoutingLossSettings rsl,
        bool trainExperts, FineTuneSettings settings, IProgress<TrainingProgress>? progress = null, CancellationToken ct = default)
    {
        settings.Validate();
        rsl.Validate();
        if (routing.Mode is not (RoutingMode.Soft or RoutingMode.StraightThrough))
            throw new ArgumentException("router training needs soft or straight-through routing");
        routing.Validate(mixer.Experts);
        var data = EncodedData.Create(tokenizer, records, settings, tasks.Count > 0 ? tasks : null);
        var expertOfTask = ExpertOfTask(mixer, tasks);
        if (mixer.Config.RoutingGranularity == RoutingGranularity.Sequence && records.FirstOrDefault(r => string.IsNullOrEmpty(r.Prompt)) is { } noPrompt)
            throw new Errors.DataFormatException(
                $"{noPrompt.Location}: sequence routing decides at the end of the prompt, and this line has none; give every line a \"prompt\" or use --routing-granularity token");
        if (rsl.Supervision > 0 && !data.Train.Any(e => e.TaskIndex >= 0 && expertOfTask[e.TaskIndex] >= 0))
            throw new Errors.DataFormatException(
                $"router supervision needs training lines whose \"task\" names an expert (experts: {string.Join(", ", mixer.ExpertNames)}; " +
                $"tasks in the data: {(tasks.Count > 0 ? string.Join(", ", tasks) : "none")}); add the tasks or pass --router-supervision 0");
        using var expertLookup = tensor(expertOfTask.Select(e => (long)e).Append(-1L).ToArray(), device: mixer.Model.Device);
        if (mixer.Config.RouterInputNorm == RouterInputNorm.Standardize)
            Standardize(mixer, data.Train.Take(StandardizationExamples).ToArray(), settings.BatchSize);
        mixer.SetTrainable(routers: true, experts: trainExperts);
        mixer.SetRouting(routing);
        mixer.SetRecording(true);
        var initial = trainExperts && rsl.Beta > 0
            ? mixer.ExpertParameters().Select(p => (p.Value, p.Value.detach().clone().DetachFromDisposeScope())).ToArray()
            : Array.Empty<(Parameter, Tensor)>();
        var parameters = mixer.RouterParameters().Concat(trainExperts ? mixer.ExpertParameters() : []).ToArray();
        Dictionary<string, double>? routingMetrics = null;
        var objective = new CausalLmObjective(mixer.Model, parameters, data.Train, data.Eval, settings.BatchSize,
            settings.Trainer.Seed, tokenizer.EosId ?? 0)
        {
            BeforeForward = batch =>
            {
                mixer.TakeRecordedProbabilities().DisposeAll();
                mixer.SetDecisionPositions(PromptEnds(batch));
            },
            ExtraLoss = (batch, step, total) =>
            {
                var probabilities = mixer.TakeRecordedProbabilities();
                try
                {
                    routingMetrics = StepRoutingMetrics(probabilities, batch.AttentionMask);
                    Tensor loss = RoutingLoss.Compute(probabilities, batch.AttentionMask, rsl.Alpha, rsl.LambdaAt(step, total), rsl.EntropySign);
                    if (rsl.Supervision > 0)
                    {
                        // Task −1 (no task) indexes the lookup's last entry, −1: that sample is not supervised.
                        var taskIds = batch.TaskIds.to(expertLookup.device);
                        var experts = expertLookup.index_select(0, taskIds.where(taskIds.ge(0), expertLookup.shape[0] - 1));
                        var supervised = probabilities.Select(p => RoutingLoss.Supervision(p, batch.AttentionMask, experts)).Aggregate((a, b) => a + b);
                        loss = loss + rsl.Supervision * supervised / probabilities.Count;
                    }
                    if (initial.Length > 0)
                        loss = loss + rsl.Beta * RoutingLoss.Preservation(initial.Select(p => ((Tensor)p.Item1, p.Item2)));
                    return loss;
                }
                finally
                {
                    probabilities.DisposeAll();
                }
            },
            ExtraMetrics = () => routingMetrics,
            SetTraining = mixer.Train,
        };
        try
        {
            // Every setting that shapes the stage-2 trajectory: resuming with another one is refused.
            var trajectory = new Dictionary<string, string>(Trajectory(settings, trainExperts ? "stage2-joint" : "stage2-routers", tasks, records, mixer.Config, null))
            {
                ["experts"] = ExpertsFingerprint(mixer),
                ["routing"] = routing.Mode.ToString(),
                ["top_k"] = routing.TopK.ToString(CultureInfo.InvariantCulture),
                ["temperature"] = routing.Temperature.ToString("R", CultureInfo.InvariantCulture),
                ["rsl"] = string.Create(CultureInfo.InvariantCulture, $"α {rsl.Alpha:R}, λ {rsl.Lambda:R}, sign {rsl.EntropySign}, warm-up {rsl.WarmupRatio:R}, β {rsl.Beta:R}"),
                ["router_supervision"] = rsl.Supervision.ToString("R", CultureInfo.InvariantCulture),
                ["router_input"] = RouterPreset.Spell(mixer.Config.RouterInput),
                ["router_input_norm"] = RouterPreset.Spell(mixer.Config.RouterInputNorm),
                ["routing_granularity"] = RouterPreset.Spell(mixer.Config.RoutingGranularity),
            };
            var trainer = new Trainer(settings.Trainer with { TrajectorySettings = trajectory }, objective);
            var summary = trainer.Run(progress, ct);
            mixer.Train(false);
            mixer.SetTrainable(false, false);
            var statistics = CollectStatistics(mixer, data.Eval.Count > 0 ? data.Eval : data.Train.Take(256).ToArray(), tasks, settings.BatchSize);
            mixer.SetRouting(mixer.Config.InferenceRouting);
            return (summary, statistics);
        }
        finally
        {
            mixer.SetRecording(false);
            mixer.SetDecisionPositions(null);
            foreach (var (_, t) in initial) t.Dispose();
        }
    }

    /// <summary>
    /// Position of the last prompt token of every row [B] (where the response starts to be predicted): where
    /// sequence routing decides. Rows without a prompt give 0.
    /// </summary>
    public static Tensor PromptEnds(TrainingBatch batch) => batch.TargetMask.to(ScalarType.Int64).argmax(1);

    /// <summary>Examples used to measure the router input statistics of standardisation.</summary>
    public const int StandardizationExamples = 256;

    /// <summary>Index of the expert named like each task, −1 for a task without an expert of that name.</summary>
    public static int[] ExpertOfTask(LoraMixerModel mixer, IReadOnlyList<string> tasks) =>
        tasks.Select(t => mixer.ExpertNames.ToList().IndexOf(t)).ToArray();

    /// <summary>
    /// Measures, per router, the mean and standard deviation of every input feature over the real tokens of
    /// <paramref name="examples"/> (routing uniform meanwhile) and sets them as the routers' standardisation.
    /// Deterministic for the same examples, so a resumed stage 2 measures the same values.
    /// </summary>
    public static void Standardize(LoraMixerModel mixer, IReadOnlyList<EncodedExample> examples, int batchSize)
    {
        if (examples.Count == 0) throw new ArgumentException("router standardisation needs examples");
        var saved = mixer.Slots.Select(s => s.Settings).ToArray();
        var sums = new Tensor?[mixer.Slots.Count];
        var squares = new Tensor?[mixer.Slots.Count];
        double tokens = 0;
        foreach (var slot in mixer.Slots) slot.Router.SetStandardization(null, null);
        using var noGrad = no_grad();
        // Routing is uniform while measuring (routers zeroed), so the statistics do not depend on where
        // training later takes the routers; the weights are put back afterwards.
        var routers = mixer.RouterParameters();
        var backup = routers.Select(p => p.Value.detach().clone().DetachFromDisposeScope()).ToArray();
        try
        {
            foreach (var (_, p) in routers) p.zero_();
            mixer.SetRouting(new RoutingSettings(RoutingMode.Soft));
            mixer.SetFeatureRecording(true);
            for (int start = 0; start < examples.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                using var batch = BatchCollator.Collate(examples.Skip(start).Take(batchSize).ToArray(), 0, mixer.Model.Device);
                mixer.SetDecisionPositions(PromptEnds(batch));
                mixer.Model.Forward(batch.InputIds, batch.AttentionMask);
                var mask = batch.AttentionMask.to(ScalarType.Float32).unsqueeze(-1);
                tokens += mask.sum().item<float>();
                for (int r = 0; r < mixer.Slots.Count; r++)
                {
                    var features = mixer.Slots[r].TakeRecordedFeatures();
                    try
                    {
                        var f = features.Single() * mask;
                        var sum = f.sum(new long[] { 0, 1 });
                        var sq = (f * f).sum(new long[] { 0, 1 });
                        var oldSum = sums[r];
                        var oldSquares = squares[r];
                        sums[r] = (oldSum is null ? sum : oldSum + sum).DetachFromDisposeScope();
                        squares[r] = (oldSquares is null ? sq : oldSquares + sq).DetachFromDisposeScope();
                        oldSum?.Dispose();
                        oldSquares?.Dispose();
                    }
                    finally
                    {
                        features.DisposeAll();
                    }
                }
            }
        }
        finally
        {
            mixer.SetFeatureRecording(false);
            mixer.SetDecisionPositions(null);
            for (int i = 0; i < mixer.Slots.Count; i++) mixer.Slots[i].Settings = saved[i];
            for (int i = 0; i < routers.Count; i++) routers[i].Value.copy_(backup[i]);
            backup.DisposeAll();
        }
        for (int r = 0; r < mixer.Slots.Count; r++)
        {
            using var scope = NewDisposeScope();
            var mean = sums[r]! / tokens;
            var variance = (squares[r]! / tokens - mean * mean).clamp_min(0);
            // A floor keeps features that never vary (e.g. a zero column) from being blown up.
            var std = (variance + 1e-6).sqrt().clamp_min(1e-3);
            mixer.Slots[r].Router.SetStandardization(mean, std);
            sums[r]!.Dispose();
            squares[r]!.Dispose();
        }
    }

    /// <summary>Routing statistics of <paramref name="mixer"/> over <paramref name="examples"/> (no gradients).</summary>
    public static RoutingStatistics CollectStatistics(LoraMixerModel mixer, IReadOnlyList<EncodedExample> examples,
        IReadOnlyList<string> tasks, int batchSize)
    {
        var stats = new RoutingStatistics(mixer.Slots.Select(s => s.Name).ToArray(), mixer.ExpertNames, tasks);
        mixer.SetRecording(true);
        try
        {
            using var noGrad = no_grad();
            for (int start = 0; start < examples.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                using var batch = BatchCollator.Collate(examples.Skip(start).Take(batchSize).ToArray(), 0, mixer.Model.Device);
                mixer.TakeRecordedProbabilities().DisposeAll();
                mixer.SetDecisionPositions(PromptEnds(batch));
                mixer.Model.Forward(batch.InputIds, batch.AttentionMask);
                var probabilities = mixer.TakeRecordedProbabilities();
                try
                {
                    stats.Add(probabilities, batch.AttentionMask, batch.TaskIds);
                }
                finally
                {
                    probabilities.DisposeAll();
                }
            }
        }
        finally
        {
            mixer.SetRecording(false);
            mixer.SetDecisionPositions(null);
        }
        return stats;
    }

    /// <summary>Per router of one batch: mean token entropy and the largest expert load (share of top-1), for the training log.</summary>
    private static Dictionary<string, double> StepRoutingMetrics(IReadOnlyList<Tensor> probabilities, Tensor tokenMask)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var metrics = new Dictionary<string, double>();
        for (int r = 0; r < probabilities.Count; r++)
        {
            var p = probabilities[r].detach();
            metrics[$"router{r}_entropy"] = Math.Round(RoutingLoss.Entropy(p, tokenMask).item<float>(), 4);
            var load = nn.functional.one_hot(p.argmax(-1), p.shape[^1]).to(ScalarType.Float32) * tokenMask.unsqueeze(-1).to(ScalarType.Float32);
            var share = load.sum(new long[] { 0, 1 }) / load.sum().clamp_min(1);
            metrics[$"router{r}_max_load"] = Math.Round(share.max().item<float>(), 4);
        }
        return metrics;
    }

    private static IReadOnlyDictionary<string, string> Trajectory(FineTuneSettings s, string stage, IReadOnlyList<string> tasks,
        IReadOnlyList<TrainingRecord> records, MixerConfig mixer, LoraConfig? experts)
    {
        var trajectory = new Dictionary<string, string>
        {
            ["stage"] = stage,
            ["batch_size"] = s.BatchSize.ToString(CultureInfo.InvariantCulture),
            ["max_length"] = s.MaxLength.ToString(CultureInfo.InvariantCulture),
            ["tasks"] = string.Join(",", tasks),
            ["data"] = RecordsFingerprint.Of(records),
            ["targets"] = string.Join(",", mixer.Targets),
            ["router_scope"] = mixer.RouterScope.ToString(),
        };
        if (experts is not null)
        {
            trajectory["r"] = experts.R.ToString(CultureInfo.InvariantCulture);
            trajectory["lora_alpha"] = experts.LoraAlpha.ToString("R", CultureInfo.InvariantCulture);
            trajectory["lora_dropout"] = experts.LoraDropout.ToString("R", CultureInfo.InvariantCulture);
        }
        return trajectory;
    }

    /// <summary>
    /// A checksum of the experts' weights as stage 2 starts (sum and absolute sum of every A and B), so a
    /// resumed plug-and-play run refuses adapters that changed since the first run.
    /// </summary>
    private static string ExpertsFingerprint(LoraMixerModel mixer)
    {
        double sum = 0, abs = 0;
        using var scope = NewDisposeScope();
        foreach (var (_, p) in mixer.ExpertParameters())
        {
            var d = p.detach().to(ScalarType.Float64);
            sum += d.sum().item<double>();
            abs += d.abs().sum().item<double>();
        }
        return string.Create(CultureInfo.InvariantCulture, $"{mixer.Config.Experts.Count} experts, Σ {sum:R}, Σ|·| {abs:R}");
    }
}
