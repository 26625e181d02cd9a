namespace LoraMixer.Evaluation;

/// <summary>The score of one <see cref="LoglikelihoodRequest"/>.</summary>
/// <param name="LogLikelihood">Σ log p(continuation token | everything before it), natural log.</param>
/// <param name="IsGreedy">Whether every continuation token is the model's arg-max at its position.</param>
/// <param name="ContinuationTokens">Number of continuation tokens scored.</param>
/// <param name="InputTokens">Tokens fed to the model for this request (context and continuation minus the last).</param>
public sealed record LoglikelihoodResult(double LogLikelihood, bool IsGreedy, int ContinuationTokens, int InputTokens);
