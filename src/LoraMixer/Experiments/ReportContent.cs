namespace LoraMixer.Experiments;

/// <summary>What an experiment report says, once, for both its Markdown and its HTML page.</summary>
internal sealed record ReportContent(
    string Title, string Summary, IReadOnlyList<(string Key, string Value)> Setup,
    ScoreTable Main, string MainCaption, IReadOnlyList<string> CostHeader, IReadOnlyList<IReadOnlyList<string>> CostRows,
    ScoreTable? Ablation, string? AblationCaption, IReadOnlyList<(string File, string Caption)> Figures)
{
    /// <summary>Statistics tables (empty without per-item outcomes): header, then rows of intervals and of paired comparisons.</summary>
    public IReadOnlyList<string> StatsHeader { get; init; } = [];

    /// <summary>Per method: each task's mean with its 95% interval over seeds and items.</summary>
    public IReadOnlyList<IReadOnlyList<string>> IntervalRows { get; init; } = [];

    /// <summary>Per method: each task's difference from multi-task LoRA on the same items, its 95% interval and p.</summary>
    public IReadOnlyList<IReadOnlyList<string>> PairedRows { get; init; } = [];
}
