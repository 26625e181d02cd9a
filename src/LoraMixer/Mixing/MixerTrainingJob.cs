using System.Globalization;
using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// The two training stages of the LoRA-Mixer (method.md §6): stage 1 trains one expert per task with hard
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
        };
        var trainer = new Trainer(settings.Trainer with { TrajectorySettings = Trajectory(settings, "stage1", tasks) }, objective);
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
            BeforeForward = _ => DisposeAll(mixer.TakeRecordedProbabilities()),
            ExtraLoss = (batch, step, total) =>
            {
                var probabilities = mixer.TakeRecordedProbabilities();
                try
                {
                    routingMetrics = StepRoutingMetrics(probabilities, batch.AttentionMask);
                    Tensor loss = RoutingLoss.Compute(probabilities, batch.AttentionMask, rsl.Alpha, rsl.LambdaAt(step, total), rsl.EntropySign);
                    if (initial.Length > 0)
                        loss = loss + rsl.Beta * RoutingLoss.Preservation(initial.Select(p => ((Tensor)p.Item1, p.Item2)));
                    return loss;
                }
                finally
                {
                    DisposeAll(probabilities);
                }
            },
            ExtraMetrics = () => routingMetrics,
            SetTraining = mixer.Train,
        };
        try
        {
            var trainer = new Trainer(settings.Trainer with { TrajectorySettings = Trajectory(settings, trainExperts ? "stage2-joint" : "stage2-routers", tasks) }, objective);
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
            foreach (var (_, t) in initial) t.Dispose();
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
                DisposeAll(mixer.TakeRecordedProbabilities());
                mixer.Model.Forward(batch.InputIds, batch.AttentionMask);
                var probabilities = mixer.TakeRecordedProbabilities();
                try
                {
                    stats.Add(probabilities, batch.AttentionMask, batch.TaskIds);
                }
                finally
                {
                    DisposeAll(probabilities);
                }
            }
        }
        finally
        {
            mixer.SetRecording(false);
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

    private static void DisposeAll(IEnumerable<Tensor> tensors)
    {
        foreach (var t in tensors) t.Dispose();
    }

    private static IReadOnlyDictionary<string, string> Trajectory(FineTuneSettings s, string stage, IReadOnlyList<string> tasks) =>
        new Dictionary<string, string>
        {
            ["stage"] = stage,
            ["batch_size"] = s.BatchSize.ToString(CultureInfo.InvariantCulture),
            ["max_length"] = s.MaxLength.ToString(CultureInfo.InvariantCulture),
            ["tasks"] = string.Join(",", tasks),
        };
}
