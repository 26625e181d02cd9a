using static TorchSharp.torch;

namespace LoraMixer.Training;

/// <summary>Clipping of gradients by their global L2 norm, as <c>torch.nn.utils.clip_grad_norm_</c>.</summary>
public static class GradientClipping
{
    /// <summary>
    /// Computes the L2 norm of all gradients of <paramref name="parameters"/> taken together and, when it
    /// exceeds <paramref name="maxNorm"/> (&gt; 0), scales every gradient by <c>maxNorm / norm</c> so the
    /// global norm becomes exactly <paramref name="maxNorm"/> (torch adds 1e-6 to the norm; we do not).
    /// Parameters without a gradient are ignored; <paramref name="maxNorm"/> = 0 only measures.
    /// Returns the norm before clipping (NaN or ∞ when a gradient is, in which case nothing is scaled).
    /// </summary>
    public static double ClipByGlobalNorm(IEnumerable<Tensor> parameters, double maxNorm)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var grads = Gradients(parameters, maxNorm);
        if (grads.Count == 0) return 0.0;
        // Sum of squares in float64, so that many small float32 gradients do not lose precision.
        Tensor sumOfSquares = zeros([], float64, grads[0].device);
        foreach (Tensor grad in grads) sumOfSquares.add_(grad.to(float64).square().sum());
        double norm = Math.Sqrt(sumOfSquares.item<double>());
        if (maxNorm > 0 && norm > maxNorm && double.IsFinite(norm))
        {
            double scale = maxNorm / norm;
            foreach (Tensor grad in grads) grad.mul_(scale);
        }
        return norm;
    }

    /// <summary>
    /// Clipping as if every index of the leading dimension were trained on its own: the parameters are
    /// stacked experts ([E, …] each), and expert e's gradients (slice e of every parameter) are clipped by
    /// their own L2 norm, so one expert's gradient never sets another's step size (stage 1 of the joint
    /// paradigm, docs/method.md §4). Returns the global norm before clipping, for the log.
    /// </summary>
    public static double ClipPerExpert(IEnumerable<Tensor> parameters, double maxNorm)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var grads = Gradients(parameters, maxNorm);
        if (grads.Count == 0) return 0.0;
        long experts = grads[0].shape[0];
        if (grads.Any(g => g.dim() == 0 || g.shape[0] != experts))
            throw new ArgumentException($"per-expert clipping needs parameters stacked over {experts} experts in their first dimension");
        // Per expert, the sum of squares over every parameter, in float64.
        Tensor perExpert = zeros([experts], float64, grads[0].device);
        foreach (Tensor grad in grads) perExpert.add_(grad.to(float64).square().reshape(experts, -1).sum(1));
        double[] norms = perExpert.sqrt().cpu().data<double>().ToArray();
        if (maxNorm > 0 && norms.All(double.IsFinite))
        {
            var scale = tensor(norms.Select(n => n > maxNorm ? maxNorm / n : 1.0).ToArray(), device: grads[0].device);
            foreach (Tensor grad in grads)
                grad.mul_(scale.to(grad.dtype).reshape([experts, .. Enumerable.Repeat(1L, (int)grad.dim() - 1)]));
        }
        return Math.Sqrt(norms.Sum(n => n * n));
    }

    private static List<Tensor> Gradients(IEnumerable<Tensor> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm >= 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "maxNorm must be 0 (off) or positive.");
        return parameters.Select(p => p.grad).OfType<Tensor>().ToList();
    }
}
