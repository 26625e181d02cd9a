namespace LoraMixer.Experiments;

/// <summary>One measured score of a method on one task, as the runner writes it.</summary>
/// <param name="Metric">"accuracy", "mcc", ...</param>
/// <param name="Value">In percent (MCC × 100).</param>
/// <param name="N">Items scored.</param>
/// <param name="Lower">Lower end of the 95% bootstrap interval, same unit.</param>
/// <param name="Upper">Upper end of the 95% bootstrap interval.</param>
/// <param name="TokensPerSecond">Generated or scored tokens per second.</param>
/// <param name="Seconds">Wall time of the scoring.</param>
public sealed record ScoreMeasurement(string Metric, double Value, int N, double Lower, double Upper, double TokensPerSecond, double Seconds)
{
    /// <summary>Per-item outcomes, in scoring order, for paired comparisons across methods.</summary>
    public IReadOnlyList<Evaluation.ItemOutcome> Items { get; init; } = [];
}
