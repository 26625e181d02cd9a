namespace LoraMixer.Evaluation;

/// <summary>The unbiased pass@k estimator of Chen et al. (2021), HumanEval's <c>estimate_pass_at_k</c>.</summary>
public static class PassAtK
{
    /// <summary>
    /// 1 − C(n−c, k)/C(n, k) for <paramref name="n"/> samples of which <paramref name="c"/> passed, computed as
    /// 1 − ∏_{i=n−c+1}^{n} (1 − k/i) so large n does not overflow; 1 when n − c &lt; k.
    /// </summary>
    public static double Estimate(int n, int c, int k)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "need at least one sample");
        if (c < 0 || c > n) throw new ArgumentOutOfRangeException(nameof(c), c, $"passed count must be in [0, {n}]");
        if (k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be in [1, {n}]");
        if (n - c < k) return 1.0;
        double product = 1.0;
        for (int i = n - c + 1; i <= n; i++) product *= 1.0 - (double)k / i;
        return 1.0 - product;
    }
}
