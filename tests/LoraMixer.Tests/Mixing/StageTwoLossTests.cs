using LoraMixer.Data;
using LoraMixer.Mixing;
using LoraMixer.Tests.Training;
using LoraMixer.Training;
using TorchSharp;
using static LoraMixer.Tests.Mixing.MixerTrainingSupport;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// The loss stage 2 optimises (docs/method.md §5) is the task cross-entropy plus the Routing Specialization
/// Loss of the routing probabilities of that very forward pass (balance α·E·Σ p̄_i f̄_i plus sign·λ_t·mean H(p),
/// λ_t ramping linearly over the warm-up), plus router supervision and β·Σ||θ−θ⁰||² when asked. For every step,
/// the test replays the step's forward pass with the parameters the step started from, computes every term from
/// the recorded p with its own code (written from the formulas, not RoutingLoss), and checks the trainer's
/// logged task loss, its auxiliary loss and — so that the terms are shown to reach the backward pass — the
/// gradient norm of the sum.
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class StageTwoLossTests
{
    private static readonly string[] Experts = ["alpha", "beta", "gamma"];
    private const int Steps = 4;

    public static TheoryData<int, double, double, double, bool> Cases() => new()
    {
        // sign, warm-up ratio, β, supervision, train experts
        { 1, 0.5, 0.0, 0.0, false },
        { -1, 0.5, 0.0, 0.0, false },
        { 1, 0.0, 0.0, 0.0, false },
        { 1, 0.75, 0.5, 0.0, true },
        { -1, 0.5, 0.0, 0.7, false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_stage_two_loss_is_cross_entropy_plus_the_RSL_of_the_recorded_routing(int sign, double warmup, double beta,
        double supervision, bool trainExperts)
    {
        const double alpha = 0.5, lambda = 0.8;
        var rsl = new RoutingLossSettings(alpha, lambda, sign, warmup, beta, supervision);
        var records = Experts.SelectMany((t, i) => Records(t, 4, lengthSeed: 10 + i, letterSeed: 20 + i)).ToArray();
        var settings = Settings(maxSteps: Steps, learningRate: 0.05);

        using var model = LoadBase();
        using var mixer = RandomMixer(model, Config(model, "tiny-llama", Experts), seed: 3, routerStd: 0.3);
        var start = Snapshot(mixer.RouterParameters().Concat(mixer.ExpertParameters()));
        var after = new List<Dictionary<string, Tensor>>();
        var reported = new List<TrainingProgress>();
        var progress = new SyncProgress<TrainingProgress>(p =>
        {
            reported.Add(p);
            after.Add(Snapshot(mixer.RouterParameters().Concat(mixer.ExpertParameters())));
        });
        MixerTrainingJob.TrainRouters(mixer, Tokenizer, records, Experts, new RoutingSettings(RoutingMode.Soft), rsl, trainExperts,
            settings, progress);
        Assert.Equal(Steps, reported.Count);

        // One batch holds every example (batch size 64), so each step sees all of them.
        var data = EncodedData.Create(Tokenizer, records, settings, Experts);
        using var batch = BatchCollator.Collate(data.Train, Tokenizer.EosId!.Value, CPU);
        var expertOfSample = batch.TaskIds;  // tasks are named like the experts, in the same order
        var all = mixer.RouterParameters().Concat(mixer.ExpertParameters()).ToArray();
        var trained = mixer.RouterParameters().Concat(trainExperts ? mixer.ExpertParameters() : []).ToArray();
        var initialExperts = mixer.ExpertParameters().Select(p => start[p.Key]).ToArray();
        for (int step = 1; step <= Steps; step++)
        {
            using var scope = NewDisposeScope();
            Restore(all, step == 1 ? start : after[step - 2]);
            mixer.SetTrainable(routers: true, experts: trainExperts);
            mixer.SetRouting(new RoutingSettings(RoutingMode.Soft));
            mixer.SetRecording(true);
            foreach (var (_, p) in all) p.grad = null;
            var logits = model.Forward(batch.InputIds, batch.AttentionMask);
            var probabilities = mixer.TakeRecordedProbabilities();
            mixer.SetRecording(false);
            Assert.Equal(2, probabilities.Count);  // one router per block, two blocks

            double lambdaT = warmup == 0 ? lambda : lambda * Math.Min(1.0, step / (warmup * Steps));
            var ce = CrossEntropy(logits, batch.TargetIds, batch.TargetMask);
            var balance = probabilities.Select(p => Balance(p, batch.AttentionMask)).ToArray();
            var entropy = probabilities.Select(p => MeanEntropy(p, batch.AttentionMask)).ToArray();
            Tensor aux = tensor(0f);
            for (int r = 0; r < probabilities.Count; r++) aux = aux + (alpha * balance[r] + sign * lambdaT * entropy[r]) / probabilities.Count;
            if (supervision > 0)
                aux = aux + supervision * probabilities.Select(p => Supervised(p, batch.AttentionMask, expertOfSample)).Aggregate((a, b) => a + b) / probabilities.Count;
            if (beta > 0)
                aux = aux + beta * mixer.ExpertParameters().Select((p, i) => (p.Value - initialExperts[i]).square().sum()).Aggregate((a, b) => a + b);
            (ce + aux).backward();
            double gradNorm = Math.Sqrt(trained.Sum(p => p.Value.grad!.to(float64).square().sum().item<double>()));

            var logged = reported[step - 1];
            double ceValue = ce.item<float>(), auxValue = aux.item<float>();
            Assert.True(Math.Abs(logged.Loss - ceValue) < 1e-5 * Math.Max(1, ceValue), $"step {step}: logged task loss {logged.Loss}, by hand {ceValue}");
            double loggedAux = logged.Metrics["aux_loss"];
            Assert.True(Math.Abs(loggedAux - auxValue) < 1e-5 * Math.Max(1, Math.Abs(auxValue)), $"step {step}: logged auxiliary loss {loggedAux}, by hand {auxValue}");
            Assert.True(Math.Abs(logged.GradNorm - gradNorm) < 1e-4 * gradNorm, $"step {step}: trainer's gradient norm {logged.GradNorm}, by hand {gradNorm}");

            // Guards: each term is large enough to be seen, so a missing or wrong one would fail above.
            double entropyTerm = lambdaT * entropy.Average(e => e.item<float>());
            Assert.True(entropyTerm > 1e-3, $"step {step}: entropy term {entropyTerm} too small to test");
            if (lambdaT < lambda)
                Assert.True(Math.Abs(lambda - lambdaT) * entropy.Average(e => e.item<float>()) > 1e-3, $"step {step}: the warm-up must change the loss measurably");
            if (beta > 0 && step > 1)
                Assert.True(mixer.ExpertParameters().Select((p, i) => (p.Value - initialExperts[i]).square().sum().item<float>()).Sum() * beta > 1e-5,
                    $"step {step}: the experts must have moved for β to matter");
            foreach (var p in probabilities) p.Dispose();
        }
        // Guard: the routers train, so every step replays different probabilities.
        Assert.Contains(mixer.RouterParameters(), p => !Identical(start[p.Key], after[^1][p.Key]));
        foreach (var t in start.Values.Concat(after.SelectMany(a => a.Values))) t.Dispose();
    }

    /// <summary>Mean of −log softmax(logits)[target] over the positions where <paramref name="mask"/> is set.</summary>
    private static Tensor CrossEntropy(Tensor logits, Tensor targets, Tensor mask)
    {
        var logP = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
        var m = mask.to(float32);
        return -(logP * m).sum() / m.sum();
    }

    /// <summary>E·Σ_i p̄_i f̄_i over real tokens: p̄ mean probability, f̄ share of top-1 choices (no gradient).</summary>
    private static Tensor Balance(Tensor p, Tensor attention)
    {
        long experts = p.shape[^1];
        var m = attention.to(float32).unsqueeze(-1);  // [B, T, 1]
        var n = m.sum();
        var meanP = (p * m).sum([0, 1]) / n;
        var top = p.argmax(-1, keepdim: true);
        var chosen = zeros_like(p).scatter(-1, top, ones_like(p)) * m;
        var share = (chosen.sum([0, 1]) / n).detach();
        return experts * (meanP * share).sum();
    }

    /// <summary>Mean over real tokens of H(p) = −Σ_i p_i log p_i.</summary>
    private static Tensor MeanEntropy(Tensor p, Tensor attention)
    {
        var m = attention.to(float32);
        var h = -(p * p.log()).sum(-1);
        return (h * m).sum() / m.sum();
    }

    /// <summary>Mean over the real tokens of −log p[expert of the sample].</summary>
    private static Tensor Supervised(Tensor p, Tensor attention, Tensor expertOfSample)
    {
        var index = expertOfSample.view(-1, 1, 1).expand(p.shape[0], p.shape[1], 1);
        var logP = p.gather(-1, index).squeeze(-1).log();
        var m = attention.to(float32);
        return -(logP * m).sum() / m.sum();
    }
}
