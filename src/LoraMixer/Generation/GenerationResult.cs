namespace LoraMixer.Generation;

/// <summary>One generated continuation: its text (stop string and EOS excluded), its ids and why it ended.</summary>
public sealed record GenerationResult(string Text, IReadOnlyList<int> TokenIds, FinishReason FinishReason);
