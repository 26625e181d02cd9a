namespace LoraMixer.Evaluation;

/// <summary>
/// One line of a user's JSONL task: a prompt with either the expected response (scored by greedy generation and
/// normalised exact match) or choices and the gold choice (scored by log-likelihood).
/// </summary>
/// <param name="Prompt">The context, used as written.</param>
/// <param name="Response">The expected response (generation lines), else null.</param>
/// <param name="Choices">The choices (choice lines), else null.</param>
/// <param name="Gold">Index of the correct choice (choice lines).</param>
public sealed record CustomExample(string Prompt, string? Response, IReadOnlyList<string>? Choices, int Gold);
