using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Models;

/// <summary>
/// One linear of the base model that an adapter may target, with the means to swap it for an adapted module.
/// </summary>
/// <param name="ModuleName">Full HF module name, e.g. <c>model.layers.3.self_attn.q_proj</c>.</param>
/// <param name="ShortName">Field name, e.g. <c>q_proj</c>.</param>
/// <param name="LayerIndex">Index of the block the linear belongs to.</param>
/// <param name="Linear">The current base linear.</param>
/// <param name="Replace">Installs a module in place of the linear (field and module registry).</param>
public sealed record TargetLinear(
    string ModuleName,
    string ShortName,
    int LayerIndex,
    Linear Linear,
    Action<nn.Module<Tensor, Tensor>> Replace)
{
    /// <summary>
    /// Adds field <paramref name="name"/> of <paramref name="parent"/> (module <c>prefix.name</c> of block
    /// <paramref name="layer"/>) to <paramref name="found"/> when it is still a plain linear and satisfies
    /// <paramref name="isTarget"/>; a linear already replaced by an adapter is not a target again.
    /// </summary>
    public static void Collect(List<TargetLinear> found, Func<string, bool> isTarget, int layer, string prefix, string name,
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
