using LoraMixer.Data;
using LoraMixer.Mixing;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Baselines;

/// <summary>
/// LoRAHub (Huang et al. 2023) over a mixer's experts: one merged LoRA <c>A = Σ w_i A_i, B = Σ w_i B_i</c>
/// per target task, its weights w searched gradient-free on a few examples of that task to minimise
/// <c>loss + 0.05·mean|w_i|</c> from w = 0 within the bounds ±1.5, as sail-sg/lorahub does. The search is our
/// Nelder–Mead (<see cref="NelderMead"/>) with every point clipped to the bounds; LoRAHub's code uses
/// nevergrad's NGOpt, a meta-optimiser whose pick depends on the nevergrad version. Needs experts of equal
/// rank per module.
/// </summary>
public static class LoraHub
{
    /// <summary>Weight of the L1 penalty on the mean absolute merge weight.</summary>
    public const double L1Weight = 0.05;

    /// <summary>Bound of every merge weight: w_i ∈ [−1.5, 1.5].</summary>
    public const double Bound = 1.5;

    /// <summary>LoRAHub's default search budget (loss evaluations).</summary>
    public const int DefaultMaxEvaluations = 40;

    /// <summary>Examples per target task that the search sees (LoRAHub's few-shot setting).</summary>
    public const int ExamplesPerTask = 5;

    /// <summary>LoRAHub's objective: <paramref name="loss"/> + 0.05 · mean |w_i|.</summary>
    public static double Objective(double loss, IReadOnlyList<double> w) => loss + L1Weight * w.Average(Math.Abs);

    /// <summary><paramref name="w"/> clipped to [−1.5, 1.5] (a new array).</summary>
    public static double[] Clip(IReadOnlyList<double> w) => w.Select(v => Math.Clamp(v, -Bound, Bound)).ToArray();

    /// <summary>
    /// Searches merge weights for <paramref name="experts"/> experts: minimises <see cref="Objective"/> of
    /// <paramref name="loss"/> from w = 0, every point clipped to the bounds before it is evaluated; returns the
    /// best (clipped) weights and their objective.
    /// </summary>
    public static (double[] Weights, double Objective) Search(Func<double[], double> loss, int experts, int maxEvaluations = DefaultMaxEvaluations)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(experts, 1);
        double F(double[] w)
        {
            var clipped = Clip(w);
            return Objective(loss(clipped), clipped);
        }
        var (best, value) = NelderMead.Minimize(F, new double[experts], step: 0.5, maxEvaluations);
        return (Clip(best), value);
    }

    /// <summary>
    /// Finds merge weights for the experts of <paramref name="mixer"/> on <paramref name="examples"/> and
    /// leaves the mixer computing the merged LoRA in expert slot 0 (call <see cref="Merge"/> again to switch);
    /// returns the weights. Call <see cref="Snapshot"/> first and pass its tensors.
    /// </summary>
    public static double[] Fit(LoraMixerModel mixer, (Tensor[] A, Tensor[] B) experts, IReadOnlyList<EncodedExample> examples, int padId,
        int maxEvaluations = DefaultMaxEvaluations)
    {
        if (examples.Count == 0) throw new ArgumentException("LoRAHub needs a few examples to search merge weights on");
        mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
        mixer.SetHardExperts(tensor(new long[] { 0 }));
        double Loss(double[] w)
        {
            Merge(mixer, experts, w);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            using var batch = BatchCollator.Collate(examples, padId, mixer.Model.Device);
            var logits = mixer.Model.Forward(batch.InputIds, batch.AttentionMask);
            return CausalLmObjective.MaskedCrossEntropy(logits, batch.TargetIds, batch.TargetMask).item<float>();
        }
        var (best, _) = Search(Loss, mixer.Experts, maxEvaluations);
        Merge(mixer, experts, best);
        return best;
    }

    /// <summary>Copies every projection's stacked experts (A, B) so that merges can be written over them; dispose the copies.</summary>
    public static (Tensor[] A, Tensor[] B) Snapshot(LoraMixerModel mixer)
    {
        foreach (var p in mixer.Projections)
            if (p.Ranks.Distinct().Count() > 1)
                throw new ArgumentException($"LoRAHub merges A and B separately, so the experts need equal ranks; {p.ModuleName} has ranks {string.Join(", ", p.Ranks)}");
        return (mixer.Projections.Select(p => p.lora_A.detach().clone().DetachFromDisposeScope()).ToArray(),
            mixer.Projections.Select(p => p.lora_B.detach().clone().DetachFromDisposeScope()).ToArray());
    }

    /// <summary>
    /// Writes the merged adapter Σ w_i A_i, Σ w_i B_i (of the <paramref name="experts"/> snapshot) into expert
    /// slot 0 of every projection, the other slots zero; route hard to expert 0 to use it.
    /// </summary>
    public static void Merge(LoraMixerModel mixer, (Tensor[] A, Tensor[] B) experts, IReadOnlyList<double> w)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var weights = tensor(w.Select(v => (float)v).ToArray());
        for (int i = 0; i < mixer.Projections.Count; i++)
        {
            var p = mixer.Projections[i];
            var scale = tensor(p.Scalings.Select(s => (float)s).ToArray());
            var (a, b) = (experts.A[i], experts.B[i]);
            // Fold each expert's scaling into its B so that slot 0's own scaling (s_0) applies once.
            var wa = weights.to(a.device).view(-1, 1, 1);
            var wb = (weights * scale / Math.Max(1e-12, p.Scalings[0])).to(b.device).view(-1, 1, 1);
            p.lora_A.zero_();
            p.lora_B.zero_();
            p.lora_A[0].copy_((a * wa).sum(dim: 0));
            p.lora_B[0].copy_((b * wb).sum(dim: 0));
        }
    }
}
