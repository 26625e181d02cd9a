namespace LoraMixer.Mixing;

/// <summary>The paper's two ways to build a LoRA-Mixer (docs/method.md §6).</summary>
public enum Paradigm
{
    /// <summary>
    /// Joint: stage 1 trains one new expert per task with hard routing, stage 2 trains the routers over them
    /// (with a preservation weight β &gt; 0 the experts keep training in stage 2).
    /// </summary>
    Joint,

    /// <summary>Plug-and-play: existing LoRA adapters stay frozen; only stage 2 runs and trains the routers.</summary>
    PlugAndPlay,
}
