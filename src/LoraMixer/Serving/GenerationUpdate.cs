namespace LoraMixer.Serving;

/// <summary>Text a running request produced since the last update; the last update also carries the summary.</summary>
/// <param name="Text">New text (may be empty).</param>
/// <param name="Summary">Set on the last update only.</param>
public sealed record GenerationUpdate(string Text, GenerationSummary? Summary = null);
