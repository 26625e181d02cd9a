using LoraMixer.Mixing;
using LoraMixer.Tests.Training;
using LoraMixer.Training;
using static LoraMixer.Tests.Mixing.MixerTrainingSupport;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// A stage-2 run stopped by cancellation (a checkpoint is saved) and resumed equals the run that was never
/// stopped: router weights, standardisation and the final loss, with the default router design (causal-mean
/// input, standardised, one decision per sequence) and router supervision.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class StageTwoResumeTests
{
    private static readonly string[] Experts = ["alpha", "beta", "gamma"];

    private static (Dictionary<string, Tensor> Routers, Dictionary<string, Tensor> Buffers, TrainingSummary Summary) Run(
        string outDir, bool resume, int? stopAfter = null)
    {
        var records = Experts.SelectMany((t, i) => Records(t, 4, lengthSeed: 50 + i, letterSeed: 60 + i)).ToArray();
        using var model = LoadBase();
        var config = Config(model, "tiny-llama", Experts, RouterScope.Block, RouterInput.CausalMean, RouterInputNorm.Standardize, RoutingGranularity.Sequence);
        using var mixer = RandomMixer(model, config, seed: 12, routerStd: 0.3);
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress<TrainingProgress>(p => { if (p.Step == stopAfter) cts.Cancel(); });
        var (summary, _) = MixerTrainingJob.TrainRouters(mixer, Tokenizer, records, Experts, new RoutingSettings(RoutingMode.Soft),
            new RoutingLossSettings(Supervision: 1.0), trainExperts: false,
            Settings(maxSteps: 6, learningRate: 0.03, batchSize: 4, outputDir: outDir, resume: resume), progress, cts.Token);
        return (Snapshot(mixer.RouterParameters()),
            mixer.RouterBuffers().ToDictionary(b => b.Key, b => b.Value.detach().clone().DetachFromDisposeScope()), summary);
    }

    [Fact]
    public void Interrupted_and_resumed_router_training_equals_an_uninterrupted_run()
    {
        var (straight, straightBuffers, summary) = Run(TestPaths.NewTempDir(), resume: false);
        Assert.Equal(6, summary.Steps);
        Assert.False(summary.Interrupted);

        string dir = TestPaths.NewTempDir();
        var (_, _, first) = Run(dir, resume: false, stopAfter: 3);
        Assert.True(first.Interrupted);
        Assert.Equal(3, first.Steps);
        var (resumed, resumedBuffers, second) = Run(dir, resume: true);
        Assert.Equal(3, second.ResumedFromStep);
        Assert.Equal(6, second.Steps);

        Assert.Equal(straight.Keys.Order(), resumed.Keys.Order());
        foreach (var (name, w) in straight)
        {
            double diff = (w - resumed[name]).abs().max().item<float>();
            Assert.True(diff <= 1e-6, $"router {name} differs by {diff} after the resumption");
        }
        Assert.Equal(straightBuffers.Keys.Order(), resumedBuffers.Keys.Order());
        Assert.NotEmpty(straightBuffers);
        foreach (var (name, b) in straightBuffers)
            Assert.True(Identical(b, resumedBuffers[name]), $"{name} differs after the resumption");
        Assert.NotNull(summary.FinalLoss);
        Assert.Equal(summary.FinalLoss!.Value, second.FinalLoss!.Value, 6);

        // Guard: the interrupted run stopped before the end, so the resumed part did real work.
        var (half, _, _) = Run(TestPaths.NewTempDir(), resume: false, stopAfter: 3);
        Assert.Contains(straight, kv => (kv.Value - half[kv.Key]).abs().max().item<float>() > 1e-4);
        int logged = File.ReadLines(Path.Combine(dir, "train_log.jsonl")).Count(l => l.Contains("\"loss\""));
        Assert.Equal(6, logged);
    }
}
