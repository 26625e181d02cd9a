namespace LoraMixer.Experiments;

/// <summary>One method's score on one task of one seed, as read from a result file.</summary>
/// <param name="Metric">"accuracy", "mcc", ...</param>
/// <param name="Value">In percent (MCC × 100).</param>
/// <param name="N">Items scored, when known.</param>
/// <param name="Ci95">The 95% interval, when known.</param>
public sealed record TaskScore(string Metric, double Value, int? N, (double? Lower, double? Upper)? Ci95)
{
    /// <summary>Per-item outcomes (index, score, predicted and gold labels), when the result file records them.</summary>
    public IReadOnlyList<Evaluation.ItemOutcome> Items { get; init; } = [];
}
