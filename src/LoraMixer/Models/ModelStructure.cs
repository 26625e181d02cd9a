using LoraMixer.Models.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Models;

/// <summary>
/// What adapter and mixer code needs to know about a model, asked of its <see cref="ICausalLM.Family"/>:
/// its identity (architecture, hidden size, block count), where a block's router reads its input, and how
/// routers are named.
/// </summary>
public static class ModelStructure
{
    /// <summary>Architecture, hidden size and number of blocks, as a mixer records and checks them.</summary>
    public static (string Architecture, int HiddenSize, int Layers) Describe(ICausalLM model) => model.Family.Describe(model);

    /// <summary>End-of-sequence ids from the model's config.</summary>
    public static IReadOnlyList<int> EosTokenIds(ICausalLM model) => model.Family.EosTokenIds(model);

    /// <summary>
    /// Makes <paramref name="router"/> part of block <paramref name="layer"/> (so its weight is named like the
    /// block's other parameters) and calls <paramref name="route"/> with the block's normalised input: the
    /// hidden state entering the attention (Llama family) or the mixer (Mamba). Returns the router's module name.
    /// </summary>
    public static string AttachBlockRouter(ICausalLM model, int layer, nn.Module router, Action<BlockInput> route) =>
        model.Family.AttachBlockRouter(model, layer, router, route);

    /// <summary>
    /// Makes <paramref name="router"/> part of the MLP of block <paramref name="layer"/> and calls
    /// <paramref name="route"/> with the MLP's normalised input (MixLoRA's router); a family whose blocks have
    /// no MLP (Mamba) refuses with <see cref="NotSupportedException"/>. Returns the router's module name.
    /// </summary>
    public static string AttachMlpRouter(ICausalLM model, int layer, nn.Module router, Action<Tensor> route) =>
        model.Family.AttachMlpRouter(model, layer, router, route);
}
