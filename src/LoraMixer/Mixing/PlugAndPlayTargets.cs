using LoraMixer.Lora;
using LoraMixer.Models;

namespace LoraMixer.Mixing;

/// <summary>
/// The projections a plug-and-play mixer covers (docs/method.md §6). By default the union of the adapters'
/// modules, so every adapter enters the mixer whole and an expert contributes nothing where it has no
/// weights; with explicit targets, those, together with the modules of each adapter they leave out.
/// </summary>
/// <param name="Targets">Short names of the mixed projections, in the order of a block.</param>
/// <param name="Dropped">Per adapter whose modules the targets leave out, those modules; empty when nothing is dropped.</param>
public sealed record PlugAndPlayTargets(IReadOnlyList<string> Targets, IReadOnlyList<DroppedModules> Dropped)
{
    /// <summary>
    /// Chooses the targets for <paramref name="adapters"/> on <paramref name="model"/>: the union of their
    /// modules, or <paramref name="explicitTargets"/> when given.
    /// </summary>
    /// <exception cref="ArgumentException">An explicit target is not a linear of the model's blocks, or there are no adapters.</exception>
    public static PlugAndPlayTargets Select(ICausalLM model, IReadOnlyList<PeftAdapter> adapters, IReadOnlyList<string>? explicitTargets)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(adapters);
        if (adapters.Count == 0) throw new ArgumentException("plug-and-play needs at least one adapter", nameof(adapters));
        var targetable = TargetLinears.Targetable(model);
        if (explicitTargets is not null)
        {
            var unknown = explicitTargets.Except(targetable).ToArray();
            if (unknown.Length > 0)
                throw new ArgumentException($"unknown target module(s) {string.Join(", ", unknown)}; a block of this model has {string.Join(", ", targetable)}");
        }
        var union = adapters.SelectMany(ShortNames).ToHashSet(StringComparer.Ordinal);
        var targets = explicitTargets ?? targetable.Where(union.Contains).ToArray();
        var dropped = adapters
            .Select(a => new DroppedModules(a.Name, targetable.Where(ShortNames(a).Except(targets).Contains).ToArray()))
            .Where(d => d.Modules.Count > 0)
            .ToArray();
        return new PlugAndPlayTargets(targets, dropped);
    }

    /// <summary>One line naming the modules the targets leave out, adapter by adapter; null when none is dropped.</summary>
    public string? DroppedSummary => Dropped.Count == 0 ? null
        : $"targets {string.Join(",", Targets)} leave out modules of the adapters: "
          + string.Join("; ", Dropped.Select(d => $"{d.Adapter}: {string.Join(", ", d.Modules)}"))
          + " (the saved experts hold only the mixed modules; drop --targets to keep them all)";

    /// <summary>The distinct short names (<c>q_proj</c>, ...) of the modules an adapter adapts.</summary>
    public static IReadOnlyCollection<string> ShortNames(PeftAdapter adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        return adapter.Modules.Keys.Select(m => m[(m.LastIndexOf('.') + 1)..]).ToHashSet(StringComparer.Ordinal);
    }
}
