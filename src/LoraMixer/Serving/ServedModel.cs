namespace LoraMixer.Serving;

/// <summary>One id requests may name: the base, an adapter or a mixer, with the experts it can route to.</summary>
/// <param name="Id">The id in requests (<c>model</c>).</param>
/// <param name="Kind">Base, adapter or mixer.</param>
/// <param name="Parent">The base model's id for adapters and mixers; null for the base.</param>
/// <param name="Experts">A mixer's experts in router order; an adapter's own name; empty for the base.</param>
/// <param name="TopK">A mixer's experts per token by default; null otherwise.</param>
public sealed record ServedModel(string Id, ServedModelKind Kind, string? Parent, IReadOnlyList<string> Experts, int? TopK);
