using LoraMixer.Evaluation;

namespace LoraMixer.Experiments;

/// <summary>
/// Two-level bootstrap over a run's seeds and each seed's scored items, so an interval carries both sources of
/// variation (training randomness and the finite test sample): each replicate draws the seeds with replacement and,
/// within every drawn seed, its items with replacement, recomputes the task metric per seed (accuracy or MCC, in
/// percent) and averages over the drawn seeds. Intervals are the 2.5% and 97.5% percentiles (linear interpolation).
/// The paired form draws the same seeds and the same item positions for both methods, so it compares them on the
/// same items.
/// </summary>
public static class SeedItemBootstrap
{
    /// <summary>Replicates per interval.</summary>
    public const int DefaultResamples = 2000;

    /// <summary>The task metric over items in percent: 100 × MCC of (predicted, gold) for "mcc", else 100 × mean score.</summary>
    public static double Metric(string metric, IReadOnlyList<ItemOutcome> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0) return double.NaN;
        if (metric == "mcc")
            return 100 * ClassificationMetrics.MatthewsCorrelation(items.Select(i => i.Predicted ?? -1).ToArray(), items.Select(i => i.Gold ?? -1).ToArray());
        return 100 * items.Average(i => i.Score);
    }

    /// <summary>The 95% interval of the mean over seeds of <paramref name="metric"/>, resampling seeds and items.</summary>
    public static (double Lower, double Upper) Interval(string metric, IReadOnlyList<IReadOnlyList<ItemOutcome>> seeds,
        int resamples = DefaultResamples, int seed = Bootstrap.DefaultSeed)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        if (seeds.Count == 0 || seeds.Any(s => s.Count == 0)) return (double.NaN, double.NaN);
        var random = new Random(seed);
        var values = new double[resamples];
        for (int r = 0; r < resamples; r++)
        {
            double sum = 0;
            for (int s = 0; s < seeds.Count; s++)
            {
                var items = seeds[random.Next(seeds.Count)];
                sum += Metric(metric, Draw(items, random));
            }
            values[r] = sum / seeds.Count;
        }
        return Percentiles(values);
    }

    /// <summary>
    /// A method against the baseline <paramref name="baselineId"/>, seed by seed on the items both scored (matched by
    /// <see cref="ItemOutcome.Index"/>); null when no seed has shared items.
    /// </summary>
    public static PairedComparison? Paired(string baselineId, string metric,
        IReadOnlyList<(IReadOnlyList<ItemOutcome> Method, IReadOnlyList<ItemOutcome> Baseline)> seeds,
        int resamples = DefaultResamples, int seed = Bootstrap.DefaultSeed)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        // Align each seed's items by index; keep the seeds with shared items.
        var aligned = seeds.Select(s =>
        {
            var baseline = s.Baseline.GroupBy(i => i.Index).ToDictionary(g => g.Key, g => g.First());
            var pairs = s.Method.Where(i => baseline.ContainsKey(i.Index)).Select(i => (A: i, B: baseline[i.Index])).ToArray();
            return pairs;
        }).Where(p => p.Length > 0).ToArray();
        if (aligned.Length == 0) return null;
        double observed = aligned.Average(p => Metric(metric, p.Select(x => x.A).ToArray()) - Metric(metric, p.Select(x => x.B).ToArray()));
        var random = new Random(seed);
        var values = new double[resamples];
        for (int r = 0; r < resamples; r++)
        {
            double sum = 0;
            for (int s = 0; s < aligned.Length; s++)
            {
                var pairs = Draw(aligned[random.Next(aligned.Length)], random);
                sum += Metric(metric, pairs.Select(x => x.A).ToArray()) - Metric(metric, pairs.Select(x => x.B).ToArray());
            }
            values[r] = sum / aligned.Length;
        }
        var (lower, upper) = Percentiles(values);
        double below = values.Count(v => v <= 0) / (double)resamples, above = values.Count(v => v >= 0) / (double)resamples;
        return new PairedComparison(baselineId, observed, lower, upper, Math.Min(1, 2 * Math.Min(below, above)), aligned.Length, aligned.Min(p => p.Length));
    }

    private static T[] Draw<T>(IReadOnlyList<T> items, Random random)
    {
        var sample = new T[items.Count];
        for (int i = 0; i < sample.Length; i++) sample[i] = items[random.Next(items.Count)];
        return sample;
    }

    private static (double Lower, double Upper) Percentiles(double[] values)
    {
        var finite = values.Where(double.IsFinite).Order().ToArray();
        if (finite.Length == 0) return (double.NaN, double.NaN);
        return (Quantile(finite, 0.025), Quantile(finite, 0.975));
    }

    private static double Quantile(double[] sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }
}
