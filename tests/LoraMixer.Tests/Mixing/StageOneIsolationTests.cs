using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Tests.Training;
using LoraMixer.Training;
using static LoraMixer.Tests.Mixing.MixerTrainingSupport;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// Stage 1 of the joint paradigm trains all experts in one run with hard routing (docs/method.md §4, §6):
/// an expert must learn from its own task's samples only, so the other tasks' samples cannot change it.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class StageOneIsolationTests
{
    private static readonly string[] Tasks = ["alpha", "beta"];

    /// <summary>Expert <paramref name="expert"/>'s slices of every stacked lora_A / lora_B, by module.</summary>
    private static Dictionary<string, Tensor> ExpertSlices(LoraMixerModel mixer, int expert) =>
        mixer.ExpertParameters().ToDictionary(p => p.Key, p => p.Value[expert].detach().clone().DetachFromDisposeScope());

    private static (Dictionary<string, Tensor> Alpha, Dictionary<string, Tensor> Beta, double MaxGradNorm) TrainStageOne(
        IReadOnlyList<TrainingRecord> records, double maxGradNorm, double weightDecay = 0.0)
    {
        using var model = LoadBase();
        var config = Config(model, "tiny-llama", Tasks);
        double largest = 0;
        var progress = new SyncProgress<TrainingProgress>(p => largest = Math.Max(largest, p.GradNorm));
        var (mixer, summary) = MixerTrainingJob.TrainExperts(model, Tokenizer, records, Tasks, ExpertConfig(model), config,
            Settings(maxSteps: 4, learningRate: 2e-2, batchSize: 6, maxGradNorm: maxGradNorm, weightDecay: weightDecay), progress);
        Assert.Equal(4, summary.Steps);
        using (mixer) return (ExpertSlices(mixer, 0), ExpertSlices(mixer, 1), largest);
    }

    [Theory]
    [InlineData(0.0)]  // no clipping
    // Clipping that acts (these gradients stay below the default 1): each expert is clipped by its own
    // gradient norm, so another task's gradient never sets this expert's step size.
    [InlineData(0.1)]
    public void An_expert_is_unchanged_by_what_the_other_tasks_samples_say(double maxGradNorm)
    {
        // Same lengths (so the same batches and token counts), different beta letters.
        var alpha = Records("alpha", 9, lengthSeed: 1, letterSeed: 2);
        var first = alpha.Concat(Records("beta", 9, lengthSeed: 3, letterSeed: 4)).ToArray();
        var second = alpha.Concat(Records("beta", 9, lengthSeed: 3, letterSeed: 99)).ToArray();
        var (alphaOne, betaOne, normOne) = TrainStageOne(first, maxGradNorm);
        var (alphaTwo, betaTwo, normTwo) = TrainStageOne(second, maxGradNorm);
        if (maxGradNorm > 0)  // guard: clipping must act, or this case would not test it
            Assert.True(Math.Min(normOne, normTwo) > maxGradNorm, $"gradient norms {normOne}, {normTwo} never reach the clip {maxGradNorm}");

        Assert.Contains(betaOne, kv => !Identical(kv.Value, betaTwo[kv.Key]));  // guard: the beta data matter to beta
        foreach (var (module, w) in alphaOne)
        {
            double diff = (w - alphaTwo[module]).abs().max().item<float>();
            Assert.True(diff == 0, $"expert alpha's {module} moved by {diff} when only beta's samples changed (max grad norm {maxGradNorm})");
        }
    }

    [Fact]
    public void Weight_decay_which_would_shrink_experts_without_samples_is_refused()
    {
        var records = Records("alpha", 12, lengthSeed: 1, letterSeed: 2);
        var error = Assert.Throws<ArgumentException>(() => TrainStageOne(records, maxGradNorm: 1.0, weightDecay: 0.1));
        Assert.Contains("weight decay (0.1)", error.Message);
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.01)] // clipping acts on alpha's gradients
    public void An_expert_without_samples_keeps_its_initialisation(double maxGradNorm)
    {
        const double weightDecay = 0;
        var records = Records("alpha", 12, lengthSeed: 1, letterSeed: 2);
        var (alphaTrained, betaTrained, _) = TrainStageOne(records, maxGradNorm: maxGradNorm);

        // The same initialisation, replayed: TrainExperts seeds torch's RNG with the trainer seed, attaches and
        // initialises (A Kaiming-uniform, B zero).
        using var model = LoadBase();
        var config = Config(model, "tiny-llama", Tasks);
        using (manual_seed(Settings(1, 1e-2).Trainer.Seed)) { }
        using var fresh = LoraMixerModel.Attach(model, config, [ExpertConfig(model), ExpertConfig(model)]);
        fresh.InitializeExperts();
        var alphaInitial = ExpertSlices(fresh, 0);
        var betaInitial = ExpertSlices(fresh, 1);

        Assert.Contains(alphaTrained, kv => !Identical(kv.Value, alphaInitial[kv.Key]));  // guard: alpha trained
        foreach (var (module, w) in betaTrained)
        {
            if (module.EndsWith(".lora_B", StringComparison.Ordinal))
                Assert.True(w.abs().max().item<float>() == 0, $"beta's {module} left zero without any beta sample");
            double diff = (w - betaInitial[module]).abs().max().item<float>();
            Assert.True(diff == 0, $"expert beta's {module} moved by {diff} without a single beta sample (weight decay {weightDecay})");
        }
    }
}
