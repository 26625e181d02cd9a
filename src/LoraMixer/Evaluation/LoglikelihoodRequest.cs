namespace LoraMixer.Evaluation;

/// <summary>Score <paramref name="Continuation"/> after <paramref name="Context"/> (lm-eval's <c>loglikelihood</c> request).</summary>
/// <param name="Context">The conditioning text (may be empty).</param>
/// <param name="Continuation">The scored text, usually starting with a space (e.g. " positive").</param>
public sealed record LoglikelihoodRequest(string Context, string Continuation);
