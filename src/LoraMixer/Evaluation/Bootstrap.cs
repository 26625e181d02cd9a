namespace LoraMixer.Evaluation;

/// <summary>
/// Percentile bootstrap confidence intervals: resample the examples with replacement (seeded, so the same inputs
/// give the same interval), recompute the metric, and take the (1 − level)/2 and (1 + level)/2 quantiles with
/// numpy's default linear interpolation.
/// </summary>
public static class Bootstrap
{
    /// <summary>Default number of resamples.</summary>
    public const int DefaultResamples = 1000;

    /// <summary>Default seed.</summary>
    public const int DefaultSeed = 1234;

    /// <summary>Interval of the mean of per-example <paramref name="scores"/> (accuracy, exact match, pass@1).</summary>
    public static ConfidenceInterval Mean(IReadOnlyList<double> scores, int resamples = DefaultResamples, int seed = DefaultSeed, double level = 0.95) =>
        Percentile(scores, sample => sample.Average(), resamples, seed, level);

    /// <summary>
    /// Interval of any <paramref name="metric"/> over whole examples; for a metric of pairs (MCC) pass the
    /// (prediction, gold) pairs so each resample keeps them together.
    /// </summary>
    public static ConfidenceInterval Percentile<T>(IReadOnlyList<T> items, Func<IReadOnlyList<T>, double> metric,
        int resamples = DefaultResamples, int seed = DefaultSeed, double level = 0.95)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(metric);
        if (resamples < 1) throw new ArgumentOutOfRangeException(nameof(resamples), resamples, "need at least one resample");
        if (!(level > 0 && level < 1)) throw new ArgumentOutOfRangeException(nameof(level), level, "level must be in (0, 1)");
        if (items.Count == 0) return new ConfidenceInterval(double.NaN, double.NaN);

        var random = new Random(seed);
        var values = new double[resamples];
        var sample = new T[items.Count];
        for (int r = 0; r < resamples; r++)
        {
            for (int i = 0; i < sample.Length; i++) sample[i] = items[random.Next(items.Count)];
            values[r] = metric(sample);
        }
        Array.Sort(values);
        return new ConfidenceInterval(Quantile(values, (1 - level) / 2), Quantile(values, (1 + level) / 2));
    }

    private static double Quantile(double[] sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }
}
