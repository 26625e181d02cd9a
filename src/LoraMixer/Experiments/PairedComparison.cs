namespace LoraMixer.Experiments;

/// <summary>
/// A method against a baseline on the same items of the same seeds: the mean difference over seeds (percentage
/// points; MCC × 100 for MCC tasks), its 95% paired-bootstrap interval (seeds, then items within a seed, resampled
/// together for both methods) and the two-sided bootstrap p-value of "no difference".
/// </summary>
/// <param name="Baseline">The baseline's method id.</param>
/// <param name="Delta">Method minus baseline, mean over the shared seeds.</param>
/// <param name="Lower">Lower end of the 95% interval of <paramref name="Delta"/>.</param>
/// <param name="Upper">Upper end.</param>
/// <param name="P">Two-sided bootstrap p-value: twice the smaller share of resampled differences on either side of 0 (at most 1).</param>
/// <param name="Seeds">Seeds both methods scored with per-item outcomes.</param>
/// <param name="Items">Items compared per seed (the smallest count over those seeds).</param>
public sealed record PairedComparison(string Baseline, double Delta, double Lower, double Upper, double P, int Seeds, int Items);
