using TorchSharp;
using TorchSharp.Modules;

namespace LoraMixer.Lora;

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
    Action<torch.nn.Module<torch.Tensor, torch.Tensor>> Replace);
