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
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm >= 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "maxNorm must be 0 (off) or positive.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var grads = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
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
}
