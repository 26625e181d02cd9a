namespace LoraMixer.Evaluation;

/// <summary>A two-sided interval, e.g. the 95% bootstrap interval of a metric (NaN bounds when undefined).</summary>
/// <param name="Lower">Lower bound.</param>
/// <param name="Upper">Upper bound.</param>
public sealed record ConfidenceInterval(double Lower, double Upper);
