using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// Fits generation prompts into the model's window as lm-evaluation-harness does for <c>generate_until</c>: a
/// prompt longer than <c>max_position_embeddings − max_gen_toks</c> keeps only its last tokens. When the
/// generation budget would leave the prompt less than half the window, the prompt keeps half of it and
/// generation gets the rest.
/// </summary>
public static class GenerationPrompt
{
    /// <summary>
    /// The token ids of <paramref name="prompt"/> (with BOS), cut from the left to the window; <c>Truncated</c>
    /// says whether anything was cut.
    /// </summary>
    public static (IReadOnlyList<int> Ids, bool Truncated) Encode(ITokenizer tokenizer, string prompt, int maxPositionEmbeddings, int maxNewTokens)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (maxPositionEmbeddings < 2) throw new ArgumentOutOfRangeException(nameof(maxPositionEmbeddings), maxPositionEmbeddings, "the window must hold at least 2 tokens");
        var ids = tokenizer.Encode(prompt, addBos: true);
        int budget = ContextBudget(maxPositionEmbeddings, maxNewTokens);
        return ids.Count <= budget ? (ids, false) : (ids.Skip(ids.Count - budget).ToArray(), true);
    }

    /// <summary>Most prompt tokens kept: the window minus the generation budget, but at least half the window.</summary>
    public static int ContextBudget(int maxPositionEmbeddings, int maxNewTokens) =>
        Math.Max(maxPositionEmbeddings - Math.Max(maxNewTokens, 0), maxPositionEmbeddings / 2);
}
