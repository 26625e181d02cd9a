namespace LoraMixer.Experiments;

/// <summary>What an experiment report says, once, for both its Markdown and its HTML page.</summary>
internal sealed record ReportContent(
    string Title, string Summary, IReadOnlyList<(string Key, string Value)> Setup,
    ScoreTable Main, string MainCaption, IReadOnlyList<string> CostHeader, IReadOnlyList<IReadOnlyList<string>> CostRows,
    ScoreTable? Ablation, string? AblationCaption, IReadOnlyList<(string File, string Caption)> Figures);
