using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// The Routing Specialization Loss (RSL; v1: Specialization Balance Loss), docs/method.md §5. Per layer, over
/// the real tokens of a batch: balance <c>α·E·Σ_i p̄_i f̄_i</c> plus <c>sign·λ·mean H(p)</c>; averaged over layers.
/// </summary>
public static class RoutingLoss
{
    /// <summary>
    /// The RSL of <paramref name="probabilities"/> (one [B, T, E] tensor per layer) over the tokens where
    /// <paramref name="tokenMask"/> [B, T] is non-zero.
    /// </summary>
    public static Tensor Compute(IReadOnlyList<Tensor> probabilities, Tensor tokenMask, double alpha, double lambda, int entropySign)
    {
        if (probabilities.Count == 0) throw new ArgumentException("RSL needs the routing probabilities of at least one layer");
        using var scope = NewDisposeScope();
        Tensor? total = null;
        foreach (var p in probabilities)
        {
            var term = Balance(p, tokenMask) * alpha + Entropy(p, tokenMask) * (entropySign * lambda);
            total = total is null ? term : total + term;
        }
        return (total! / probabilities.Count).MoveToOuterDisposeScope();
    }

    /// <summary><c>E·Σ_i p̄_i f̄_i</c> of one layer (1 when routing is perfectly balanced); f̄ carries no gradient.</summary>
    public static Tensor Balance(Tensor p, Tensor tokenMask)
    {
        using var scope = NewDisposeScope();
        long experts = p.shape[^1];
        var (flat, mask, count) = Flatten(p, tokenMask);
        var meanP = (flat * mask.unsqueeze(-1)).sum(dim: 0) / count;
        var top1 = nn.functional.one_hot(flat.argmax(-1), experts).to(flat.dtype);
        var fraction = (top1 * mask.unsqueeze(-1)).sum(dim: 0) / count;
        return (experts * (meanP * fraction.detach()).sum()).MoveToOuterDisposeScope();
    }

    /// <summary>Mean token entropy <c>H(p) = −Σ p log p</c> of one layer over real tokens.</summary>
    public static Tensor Entropy(Tensor p, Tensor tokenMask)
    {
        using var scope = NewDisposeScope();
        var (flat, mask, count) = Flatten(p, tokenMask);
        var h = -(flat * flat.clamp_min(1e-12).log()).sum(-1);
        return ((h * mask).sum() / count).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Router supervision of one layer: the mean over real tokens of <c>−log p_{e(b)}</c>, where e(b) =
    /// <paramref name="expertPerSample"/>[b] is the expert of sample b's task (−1: the sample is skipped).
    /// </summary>
    public static Tensor Supervision(Tensor p, Tensor tokenMask, Tensor expertPerSample)
    {
        using var scope = NewDisposeScope();
        if (p.dim() != 3) throw new ArgumentException($"router supervision needs probabilities [batch, time, experts], got [{string.Join(", ", p.shape)}]");
        if (expertPerSample.numel() != p.shape[0]) throw new ArgumentException($"{expertPerSample.numel()} expert ids for a batch of {p.shape[0]}");
        var ids = expertPerSample.to(ScalarType.Int64).to(p.device);
        var known = ids.ge(0);
        var target = ids.clamp_min(0).view(-1, 1, 1).expand(p.shape[0], p.shape[1], 1);
        var logP = p.gather(-1, target).squeeze(-1).clamp_min(1e-12).log();            // [B, T]
        var mask = tokenMask.to(p.dtype).to(p.device) * known.to(p.dtype).unsqueeze(1);
        return (-(logP * mask).sum() / mask.sum().clamp_min(1)).MoveToOuterDisposeScope();
    }

    /// <summary>Expert preservation <c>Σ_e ||θ_e − θ_e⁰||²</c> (paper Eq. 11) over pairs of current and initial tensors.</summary>
    public static Tensor Preservation(IEnumerable<(Tensor Current, Tensor Initial)> pairs)
    {
        using var scope = NewDisposeScope();
        Tensor? total = null;
        foreach (var (current, initial) in pairs)
        {
            var term = (current - initial).pow(2).sum();
            total = total is null ? term : total + term;
        }
        return (total ?? tensor(0f)).MoveToOuterDisposeScope();
    }

    private static (Tensor Flat, Tensor Mask, Tensor Count) Flatten(Tensor p, Tensor tokenMask)
    {
        long experts = p.shape[^1];
        var flat = p.reshape(-1, experts);
        var mask = tokenMask.reshape(-1).to(p.dtype).to(p.device);
        if (mask.shape[0] != flat.shape[0])
            throw new ArgumentException($"token mask covers {mask.shape[0]} tokens, routing has {flat.shape[0]}");
        return (flat, mask, mask.sum().clamp_min(1));
    }
}
