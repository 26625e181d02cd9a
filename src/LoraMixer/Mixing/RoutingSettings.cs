namespace LoraMixer.Mixing;

/// <summary>The routing of one phase: mode, k, renormalisation and softmax temperature τ.</summary>
public sealed record RoutingSettings(RoutingMode Mode, int TopK = RoutingSettings.DefaultTopK, bool Renormalize = true, double Temperature = 1.0)
{
    /// <summary>Experts per token at inference unless told otherwise: the paper's k = 2 (docs/method.md §4).</summary>
    public const int DefaultTopK = 2;

    /// <summary>Checks the settings against the number of experts; k larger than E is an error, not a silent clamp.</summary>
    public void Validate(int experts)
    {
        if (experts < 1) throw new ArgumentException("a mixer needs at least one expert");
        if (Mode is RoutingMode.TopK or RoutingMode.StraightThrough && (TopK < 1 || TopK > experts))
            throw new ArgumentException($"top-k must be between 1 and the number of experts ({experts}), got {TopK}");
        if (!(Temperature > 0) || double.IsInfinity(Temperature))
            throw new ArgumentException($"router temperature must be a positive number, got {Temperature}");
    }
}
