using LoraMixer.Data;
using LoraMixer.Mixing;
using LoraMixer.Tests.Training;
using LoraMixer.Training;
using static LoraMixer.Tests.Mixing.MixerTrainingSupport;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// Stage 2 (plug-and-play) with straight-through routing (docs/method.md §4) and with one router per projection
/// (§3, <c>router_scope: projection</c>): every router trains, nothing else moves, and the saved mixer
/// reloads with the same logits.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class StageTwoRoutingModesTests
{
    private static readonly string[] Experts = ["alpha", "beta", "gamma"];

    public static TheoryData<string, RouterScope, RoutingMode> Cases() => new()
    {
        { "tiny-llama", RouterScope.Block, RoutingMode.StraightThrough },
        { "tiny-llama", RouterScope.Projection, RoutingMode.Soft },
        { "tiny-llama", RouterScope.Projection, RoutingMode.StraightThrough },
        { "tiny-mamba", RouterScope.Projection, RoutingMode.Soft },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Router_training_moves_every_router_and_only_the_routers_and_the_saved_mixer_reloads(string baseName, RouterScope scope, RoutingMode mode)
    {
        var records = Experts.SelectMany((t, i) => Records(t, 4, lengthSeed: 30 + i, letterSeed: 40 + i)).ToArray();
        var settings = Settings(maxSteps: 3, learningRate: 0.05);
        using var model = LoadBase(baseName);
        var config = Config(model, baseName, Experts, scope);
        using var mixer = RandomMixer(model, config, seed: 8, routerStd: 0.5);
        Assert.Equal(scope == RouterScope.Projection ? mixer.Projections.Count : 2, mixer.Slots.Count);
        var routers = Snapshot(mixer.RouterParameters());
        var experts = Snapshot(mixer.ExpertParameters());
        var baseWeights = BaseWeights(model);
        Assert.NotEmpty(baseWeights);

        double firstLoss = double.NaN;
        var progress = new SyncProgress<TrainingProgress>(p => { if (p.Step == 1) firstLoss = p.Loss; });
        var routing = new RoutingSettings(mode, TopK: 2);
        var (summary, _) = MixerTrainingJob.TrainRouters(mixer, Tokenizer, records, Experts, routing, new RoutingLossSettings(), trainExperts: false,
            settings, progress);
        Assert.Equal(3, summary.Steps);

        foreach (var (name, p) in mixer.RouterParameters())
            Assert.False(Identical(p, routers[name]), $"router {name} did not train ({mode}, {scope})");
        foreach (var (name, p) in mixer.ExpertParameters())
            Assert.True(Identical(p, experts[name]), $"expert tensor {name} moved in plug-and-play router training");
        var baseAfter = BaseWeights(model);
        foreach (var (name, w) in baseWeights)
            Assert.True(Identical(w, baseAfter[name]), $"base weight {name} moved");

        // The first step's task loss is that of the routing the step used, from the starting routers:
        // straight-through computes the forward pass with the top-k weights, soft with all of p.
        var trained = Snapshot(mixer.RouterParameters());
        Restore(mixer.RouterParameters(), routers);
        var data = EncodedData.Create(Tokenizer, records, settings, Experts);
        double topK = TaskLoss(mixer, data.Train, new RoutingSettings(RoutingMode.TopK, 2, Renormalize: true));
        double soft = TaskLoss(mixer, data.Train, new RoutingSettings(RoutingMode.Soft));
        Assert.True(Math.Abs(topK - soft) > 1e-3, $"top-k ({topK}) and soft ({soft}) routing must give different losses");
        double expected = mode == RoutingMode.StraightThrough ? topK : soft;
        Assert.True(Math.Abs(firstLoss - expected) < 1e-5 * Math.Max(1, expected), $"{mode}: step 1's task loss {firstLoss}, expected {expected} (top-k {topK}, soft {soft})");
        Restore(mixer.RouterParameters(), trained);

        // Save, reload into a fresh base, and compare the logits with inference (top-k) and soft routing.
        string dir = Path.Combine(TestPaths.NewTempDir(), "mixer");
        MixerCheckpoint.Save(mixer, dir);
        using var freshBase = LoadBase(baseName);
        using var reloaded = MixerCheckpoint.Load(freshBase, dir);
        Assert.Equal(scope, reloaded.Config.RouterScope);
        foreach (var (name, p) in reloaded.RouterParameters())
            Assert.True(Identical(p, trained[name]), $"router {name} changed through save and load");
        var ids = tensor(new long[] { 1, 20, 11, 14, 9, 30, 12, 25, 17 }, new long[] { 1, 9 });
        using var noGrad = no_grad();
        foreach (var inference in new[] { config.InferenceRouting, new RoutingSettings(RoutingMode.Soft) })
        {
            mixer.SetRouting(inference);
            reloaded.SetRouting(inference);
            var before = model.Forward(ids);
            var after = freshBase.Forward(ids);
            double diff = (before - after).abs().max().item<float>();
            Assert.True(diff < 1e-6, $"{inference.Mode}: reloaded mixer's logits differ by {diff}");
        }
    }

    private static double TaskLoss(LoraMixerModel mixer, IReadOnlyList<EncodedExample> examples, RoutingSettings routing)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        mixer.SetRouting(routing);
        using var batch = BatchCollator.Collate(examples, Tokenizer.EosId!.Value, CPU);
        var logits = mixer.Model.Forward(batch.InputIds, batch.AttentionMask);
        var logP = logits.log_softmax(-1).gather(-1, batch.TargetIds.unsqueeze(-1)).squeeze(-1);
        var m = batch.TargetMask.to(float32);
        return (-(logP * m).sum() / m.sum()).item<float>();
    }
}
