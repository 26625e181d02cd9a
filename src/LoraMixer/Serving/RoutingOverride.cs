namespace LoraMixer.Serving;

/// <summary>
/// A request's routing choices (the <c>lora_mixer</c> object of a request): experts per token, the experts the
/// router may choose from, or one expert forced for every token. Null fields keep the model's own routing.
/// </summary>
/// <param name="TopK">Experts per token (mixers), between 1 and the number of allowed experts.</param>
/// <param name="Experts">The experts the router may choose from, by name (mixers).</param>
/// <param name="ForceExpert">One expert (or adapter) applied to every token, by name; excludes the other two.</param>
public sealed record RoutingOverride(int? TopK = null, IReadOnlyList<string>? Experts = null, string? ForceExpert = null)
{
    /// <summary>True when nothing is overridden.</summary>
    public bool IsEmpty => TopK is null && Experts is null && ForceExpert is null;
}
