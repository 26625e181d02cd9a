namespace LoraMixer.Evaluation;

/// <summary>One HumanEval problem (openai/human-eval).</summary>
/// <param name="TaskId">E.g. <c>HumanEval/0</c>.</param>
/// <param name="Prompt">Imports, signature and docstring; the model completes the body.</param>
/// <param name="CanonicalSolution">The reference body.</param>
/// <param name="Test">Python defining <c>check(candidate)</c>.</param>
/// <param name="EntryPoint">The function passed to <c>check</c>.</param>
public sealed record HumanEvalProblem(string TaskId, string Prompt, string CanonicalSolution, string Test, string EntryPoint);
