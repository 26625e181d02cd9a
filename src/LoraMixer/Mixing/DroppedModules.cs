namespace LoraMixer.Mixing;

/// <summary>The modules (short names, e.g. <c>gate_proj</c>) of one adapter that a plug-and-play mixer's targets leave out.</summary>
public sealed record DroppedModules(string Adapter, IReadOnlyList<string> Modules);
