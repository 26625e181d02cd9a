namespace LoraMixer.Evaluation;

/// <summary>One metric of a run, e.g. <c>acc_norm</c> 0.61 [0.58, 0.64].</summary>
/// <param name="Name">lm-eval's metric name (acc, acc_norm, mcc, exact_match,strict-match, pass@1).</param>
/// <param name="Value">The metric over all evaluated examples.</param>
/// <param name="Ci95">Its 95% percentile-bootstrap interval.</param>
public sealed record MetricValue(string Name, double Value, ConfidenceInterval Ci95);
