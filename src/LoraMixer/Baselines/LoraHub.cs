using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Baselines;

/// <summary>
/// LoRAHub (Huang et al. 2023) over a mixer's experts: one merged LoRA <c>A = Σ w_i A_i, B = Σ w_i B_i</c>
/// whose weights w are searched gradient-free (Nelder–Mead) to minimise the loss on a few examples plus
/// an L1 penalty 0.05·Σ|w_i|, as LoRAHub does. Needs experts of equal rank per module.
/// </summary>
public static class LoraHub
{
    /// <summary>
    /// Finds merge weights for the experts of <paramref name="mixer"/> on <paramref name="examples"/> and
    /// leaves the mixer computing the merged LoRA (as a single expert in effect); returns the weights.
    /// </summary>
    public static double[] Fit(LoraMixerModel mixer, IReadOnlyList<EncodedExample> examples, int padId, int maxEvaluations = 40)
    {
        if (examples.Count == 0) throw new ArgumentException("LoRAHub needs a few examples to search merge weights on");
        int experts = mixer.Experts;
        foreach (var p in mixer.Projections)
            if (p.Ranks.Distinct().Count() > 1)
                throw new ArgumentException($"LoRAHub merges A and B separately, so the experts need equal ranks; {p.ModuleName} has ranks {string.Join(", ", p.Ranks)}");
        var originalA = mixer.Projections.Select(p => p.lora_A.detach().clone().DetachFromDisposeScope()).ToArray();
        var originalB = mixer.Projections.Select(p => p.lora_B.detach().clone().DetachFromDisposeScope()).ToArray();
        mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
        try
        {
            double Loss(double[] w)
            {
                Merge(mixer, originalA, originalB, w);
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                using var batch = BatchCollator.Collate(examples, padId, mixer.Model.Device);
                mixer.SetHardExperts(zeros(batch.InputIds.shape[0], dtype: ScalarType.Int64));
                var logits = mixer.Model.Forward(batch.InputIds, batch.AttentionMask);
                double ce = CausalLmObjective.MaskedCrossEntropy(logits, batch.TargetIds, batch.TargetMask).item<float>();
                return ce + 0.05 * w.Sum(Math.Abs);
            }
            var start = Enumerable.Repeat(1.0 / experts, experts).ToArray();
            var (best, _) = NelderMead.Minimize(Loss, start, step: 0.5, maxEvaluations);
            Merge(mixer, originalA, originalB, best);
            mixer.SetHardExperts(null);
            return best;
        }
        finally
        {
            foreach (var t in originalA.Concat(originalB)) t.Dispose();
        }
    }

    /// <summary>Writes the merged adapter Σ w_i A_i, Σ w_i B_i into expert slot 0 of every projection (other slots zero).</summary>
    private static void Merge(LoraMixerModel mixer, Tensor[] a, Tensor[] b, double[] w)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var weights = tensor(w.Select(v => (float)v).ToArray());
        for (int i = 0; i < mixer.Projections.Count; i++)
        {
            var p = mixer.Projections[i];
            var scale = tensor(p.Scalings.Select(s => (float)s).ToArray());
            // Fold each expert's scaling into its B so that slot 0's own scaling (s_0) applies once.
            var wa = weights.to(a[i].device).view(-1, 1, 1);
            var wb = (weights * scale / Math.Max(1e-12, p.Scalings[0])).to(b[i].device).view(-1, 1, 1);
            p.lora_A.zero_();
            p.lora_B.zero_();
            p.lora_A[0].copy_((a[i] * wa).sum(0));
            p.lora_B[0].copy_((b[i] * wb).sum(0));
        }
    }
}
