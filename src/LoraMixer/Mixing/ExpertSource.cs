namespace LoraMixer.Mixing;

/// <summary>
/// Where stage 2 finds its experts: the folder of a saved mixer (the stage-1 experts of the joint paradigm,
/// or any mixer whose experts are reused) or existing PEFT adapter folders (plug-and-play).
/// </summary>
public sealed record ExpertSource
{
    private ExpertSource() { }

    /// <summary>A mixer folder whose experts are loaded (its routers are not: stage 2 starts them afresh).</summary>
    public string? MixerDir { get; private init; }

    /// <summary>PEFT adapter folders by expert name, in router order.</summary>
    public IReadOnlyList<(string Name, string Path)> Adapters { get; private init; } = [];

    /// <summary>
    /// Plug-and-play over adapters: the projections the mixer covers; null = every projection any adapter adapts.
    /// </summary>
    public IReadOnlyList<string>? Targets { get; private init; }

    /// <summary>The experts of the mixer in <paramref name="dir"/>.</summary>
    public static ExpertSource Mixer(string dir) => new() { MixerDir = Path.GetFullPath(dir) };

    /// <summary>Existing PEFT adapters, one expert each.</summary>
    public static ExpertSource FromAdapters(IReadOnlyList<(string Name, string Path)> adapters, IReadOnlyList<string>? targets = null) =>
        adapters.Count == 0 ? throw new ArgumentException("plug-and-play needs at least one adapter") : new() { Adapters = adapters, Targets = targets };

    /// <summary>The experts' names, in router order.</summary>
    public IReadOnlyList<string> Names =>
        MixerDir is string dir ? MixerConfig.Load(dir).Experts.Select(e => e.Name).ToArray() : Adapters.Select(a => a.Name).ToArray();
}
