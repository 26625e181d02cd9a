using LoraMixer.Generation;

namespace LoraMixer.Serving;

/// <summary>How a request ended and what it used.</summary>
/// <param name="FinishReason">End of sequence, stop string or length.</param>
/// <param name="PromptTokens">Tokens of the prompt.</param>
/// <param name="CompletionTokens">Tokens generated (an end-of-sequence token not counted).</param>
/// <param name="ExpertShare">Share of the routing decisions per expert (sums to 1); empty for the base.</param>
/// <param name="RoutedTokens">Tokens the routers routed for this request (prompt and generated, over all layers).</param>
/// <param name="TimeToFirstToken">From submission to the first sampled token.</param>
public sealed record GenerationSummary(
    FinishReason FinishReason,
    int PromptTokens,
    int CompletionTokens,
    IReadOnlyDictionary<string, double> ExpertShare,
    long RoutedTokens,
    TimeSpan TimeToFirstToken);
