using LoraMixer.Models.Llama;
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
    public static IReadOnlyDictionary<string, long[]> WeightShapes(LlamaForCausalLM model) =>
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
