namespace LoraMixer.Experiments;

/// <summary>One method of a run aggregated over its seeds.</summary>
/// <param name="Method">The method id.</param>
/// <param name="Label">The display name.</param>
/// <param name="Group"><see cref="MethodResult.MainGroup"/> or <see cref="MethodResult.AblationGroup"/>.</param>
/// <param name="Seeds">The seeds with a result, ascending.</param>
/// <param name="Scores">Task → score over the seeds that scored it; a task no seed scored is missing.</param>
/// <param name="Average">
/// The mean over the accuracy tasks (every metric but MCC, which is shown apart) per seed, aggregated over the seeds
/// that scored every such task; null when none did.
/// </param>
/// <param name="TrainableParams">Mean trainable parameters over seeds, when recorded.</param>
/// <param name="TokensPerSecond">Mean inference tokens/s over seeds, when recorded.</param>
/// <param name="Seconds">Mean wall time over seeds, when recorded.</param>
public sealed record MethodSummary(
    string Method, string Label, string Group, IReadOnlyList<int> Seeds,
    IReadOnlyDictionary<string, AggregatedScore> Scores, AggregatedScore? Average,
    double? TrainableParams, double? TokensPerSecond, double? Seconds)
{
    /// <summary>Task → paired bootstrap against multi-task LoRA on the same items (absent without per-item outcomes, and for multi-task LoRA itself).</summary>
    public IReadOnlyDictionary<string, PairedComparison> Comparisons { get; init; } = new Dictionary<string, PairedComparison>();
}
