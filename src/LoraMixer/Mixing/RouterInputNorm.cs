namespace LoraMixer.Mixing;

/// <summary>How the router's input is normalised before <c>W_g</c> (docs/method.md §3, <c>router_input_norm</c>).</summary>
public enum RouterInputNorm
{
    /// <summary>As it comes (the paper's router).</summary>
    None,
    /// <summary>
    /// Per feature, minus its mean and divided by its standard deviation over the stage-2 data's tokens,
    /// measured once before router training and stored with the router (<c>router.input_mean</c>,
    /// <c>router.input_std</c>). Removes the direction that all normalised hidden states share, which
    /// otherwise dominates a zero-initialised linear router.
    /// </summary>
    Standardize,
}
