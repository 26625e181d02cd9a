namespace LoraMixer.Experiments;

/// <summary>A score over seeds: the mean, the sample standard deviation (n − 1; null for one seed) and the number of seeds.</summary>
/// <param name="Mean">Mean over seeds.</param>
/// <param name="Sd">Sample standard deviation, or null when there is one seed.</param>
/// <param name="Seeds">Number of seeds averaged.</param>
public sealed record AggregatedScore(double Mean, double? Sd, int Seeds)
{
    /// <summary>
    /// The 95% interval of <see cref="Mean"/> from a bootstrap over seeds and items (<see cref="SeedItemBootstrap"/>);
    /// null when the result files lack per-item outcomes.
    /// </summary>
    public (double Lower, double Upper)? Ci95 { get; init; }

    /// <summary>Aggregates the finite <paramref name="values"/>; null when none is finite.</summary>
    public static AggregatedScore? Of(IEnumerable<double> values)
    {
        var finite = values.Where(double.IsFinite).ToArray();
        if (finite.Length == 0) return null;
        double mean = finite.Average();
        double? sd = finite.Length > 1 ? Math.Sqrt(finite.Sum(v => (v - mean) * (v - mean)) / (finite.Length - 1)) : null;
        return new AggregatedScore(mean, sd, finite.Length);
    }
}
