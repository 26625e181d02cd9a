namespace LoraMixer.Mixing;

/// <summary>What a block's router reads (docs/method.md §3, <c>router_input</c>).</summary>
public enum RouterInput
{
    /// <summary>The token's normalised block input h_t (the paper's router).</summary>
    Token,
    /// <summary>
    /// [h_t ; mean of h_1..h_t]: the token and the running mean of the sequence so far (padding excluded), so
    /// every token sees the instruction that names its task; still causal, and kept across decoding steps.
    /// </summary>
    CausalMean,
}
