using LoraMixer.Models;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Lora;

/// <summary>Finds the linears of a Llama-family model that adapters can target, in module-name order.</summary>
public static class TargetLinears
{
    /// <summary>Names of the attention projections (the LoRA-Mixer default targets).</summary>
    public static readonly IReadOnlyList<string> AttentionProjections = new[] { "q_proj", "k_proj", "v_proj", "o_proj" };

    /// <summary>Every short name that can be targeted in a Llama-family block.</summary>
    public static readonly IReadOnlyList<string> All = new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" };

    /// <summary>The Mamba mixer's projections before and after the selective scan (the Mamba default targets).</summary>
    public static readonly IReadOnlyList<string> MambaProjections = new[] { "in_proj", "out_proj" };

    /// <summary>Every short name that can be targeted in a Mamba block.</summary>
    public static readonly IReadOnlyList<string> MambaAll = new[] { "in_proj", "x_proj", "dt_proj", "out_proj" };

    /// <summary>The short names a model's blocks offer.</summary>
    public static IReadOnlyList<string> Targetable(ICausalLM model) => model is MambaForCausalLM ? MambaAll : All;

    /// <summary>The LoRA-Mixer's default targets for a model: q/k/v/o, or in_proj/out_proj for Mamba (docs/method.md §1).</summary>
    public static IReadOnlyList<string> DefaultTargets(ICausalLM model) => model is MambaForCausalLM ? MambaProjections : AttentionProjections;

    /// <summary>All targetable linears of any supported model whose module name satisfies <paramref name="isTarget"/>.</summary>
    public static IReadOnlyList<TargetLinear> Find(ICausalLM model, Func<string, bool> isTarget) => model switch
    {
        LlamaForCausalLM llama => Find(llama, isTarget),
        MambaForCausalLM mamba => Find(mamba, isTarget),
        _ => throw new NotSupportedException($"{model.GetType().Name} has no adaptable linears"),
    };

    /// <summary>The Mamba mixers' in_proj, x_proj, dt_proj and out_proj that satisfy <paramref name="isTarget"/>.</summary>
    public static IReadOnlyList<TargetLinear> Find(MambaForCausalLM model, Func<string, bool> isTarget)
    {
        var found = new List<TargetLinear>();
        for (int i = 0; i < model.backbone.layers.Count; i++)
        {
            var mixer = model.backbone.layers[i].mixer;
            string prefix = $"backbone.layers.{i}.mixer";
            Add(found, isTarget, i, prefix, "in_proj", mixer, mixer.in_proj, m => mixer.in_proj = m);
            Add(found, isTarget, i, prefix, "x_proj", mixer, mixer.x_proj, m => mixer.x_proj = m);
            Add(found, isTarget, i, prefix, "dt_proj", mixer, mixer.dt_proj, m => mixer.dt_proj = m);
            Add(found, isTarget, i, prefix, "out_proj", mixer, mixer.out_proj, m => mixer.out_proj = m);
        }
        return found;
    }

    /// <summary>
    /// All linears whose full module name satisfies <paramref name="isTarget"/>. A linear that was already
    /// replaced by an adapter is not a target again.
    /// </summary>
    public static IReadOnlyList<TargetLinear> Find(LlamaForCausalLM model, Func<string, bool> isTarget)
    {
        var found = new List<TargetLinear>();
        for (int i = 0; i < model.model.layers.Count; i++)
        {
            var layer = model.model.layers[i];
            var attn = layer.self_attn;
            var mlp = layer.mlp;
            Add(found, isTarget, i, $"model.layers.{i}.self_attn", "q_proj", attn, attn.q_proj, m => attn.q_proj = m);
            Add(found, isTarget, i, $"model.layers.{i}.self_attn", "k_proj", attn, attn.k_proj, m => attn.k_proj = m);
            Add(found, isTarget, i, $"model.layers.{i}.self_attn", "v_proj", attn, attn.v_proj, m => attn.v_proj = m);
            Add(found, isTarget, i, $"model.layers.{i}.self_attn", "o_proj", attn, attn.o_proj, m => attn.o_proj = m);
            Add(found, isTarget, i, $"model.layers.{i}.mlp", "gate_proj", mlp, mlp.gate_proj, m => mlp.gate_proj = m);
            Add(found, isTarget, i, $"model.layers.{i}.mlp", "up_proj", mlp, mlp.up_proj, m => mlp.up_proj = m);
            Add(found, isTarget, i, $"model.layers.{i}.mlp", "down_proj", mlp, mlp.down_proj, m => mlp.down_proj = m);
        }
        return found;
    }

    /// <summary>Shapes [out, in] of every targetable base weight, keyed by weight name (<c>/// <summary>Shapes [out, in] of every targetable base weight, keyed by module name.</summary>lt;module/// <summary>Shapes [out, in] of every targetable base weight, keyed by module name.</summary>gt;.weight</c>).</summary>
    public static IReadOnlyDictionary<string, long[]> WeightShapes(ICausalLM model) =>
        Find(model, _ => true).ToDictionary(t => t.ModuleName + ".weight", t => t.Linear.weight!.shape);

    private static void Add(List<TargetLinear> found, Func<string, bool> isTarget, int layer, string prefix, string name,
        nn.Module parent, nn.Module<Tensor, Tensor> current, Action<nn.Module<Tensor, Tensor>> setField)
    {
        if (current is not Linear linear) return;
        string moduleName = prefix + "." + name;
        if (!isTarget(moduleName)) return;
        found.Add(new TargetLinear(moduleName, name, layer, linear, replacement =>
        {
            setField(replacement);
            parent.register_module(name, null!); // TorchSharp: a null module unregisters the name
            parent.register_module(name, replacement);
        }));
    }
}
