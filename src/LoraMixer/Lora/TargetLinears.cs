using LoraMixer.Models;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;

namespace LoraMixer.Lora;

/// <summary>The linears of a model that adapters can target, as its <see cref="ICausalLM.Family"/> lists them.</summary>
public static class TargetLinears
{
    /// <summary>The Llama family's attention projections (its LoRA-Mixer default targets); <see cref="LlamaFamily.AttentionProjections"/>.</summary>
    public static IReadOnlyList<string> AttentionProjections => LlamaFamily.AttentionProjections;

    /// <summary>Every short name that can be targeted in a Llama-family block; <see cref="LlamaFamily.Linears"/>.</summary>
    public static IReadOnlyList<string> All => LlamaFamily.Linears;

    /// <summary>The Mamba mixer's in_proj/out_proj (its default targets); <see cref="MambaFamily.MixerProjections"/>.</summary>
    public static IReadOnlyList<string> MambaProjections => MambaFamily.MixerProjections;

    /// <summary>Every short name that can be targeted in a Mamba block; <see cref="MambaFamily.Linears"/>.</summary>
    public static IReadOnlyList<string> MambaAll => MambaFamily.Linears;

    /// <summary>The short names a model's blocks offer.</summary>
    public static IReadOnlyList<string> Targetable(ICausalLM model) => model.Family.TargetableLinears;

    /// <summary>The LoRA-Mixer's default targets for a model: q/k/v/o, or in_proj/out_proj for Mamba (docs/method.md §1).</summary>
    public static IReadOnlyList<string> DefaultTargets(ICausalLM model) => model.Family.DefaultTargets;

    /// <summary>
    /// All targetable linears whose full module name satisfies <paramref name="isTarget"/>. A linear that was
    /// already replaced by an adapter is not a target again.
    /// </summary>
    public static IReadOnlyList<TargetLinear> Find(ICausalLM model, Func<string, bool> isTarget) => model.Family.FindLinears(model, isTarget);

    /// <summary>Shapes [out, in] of every targetable base weight, keyed by weight name (<c>&lt;module&gt;.weight</c>).</summary>
    public static IReadOnlyDictionary<string, long[]> WeightShapes(ICausalLM model) =>
        Find(model, _ => true).ToDictionary(t => t.ModuleName + ".weight", t => t.Linear.weight!.shape);
}
