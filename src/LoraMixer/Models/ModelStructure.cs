using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;
using LoraMixer.Models.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Models;

/// <summary>
/// What adapter and mixer code needs to know about a model, for every supported family: its identity
/// (architecture, hidden size, block count), where a block's router reads its input, and how routers are named.
/// </summary>
public static class ModelStructure
{
    /// <summary>Architecture, hidden size and number of blocks, as a mixer records and checks them.</summary>
    public static (string Architecture, int HiddenSize, int Layers) Describe(ICausalLM model) => model switch
    {
        LlamaForCausalLM l => (l.Config.Architecture, l.Config.HiddenSize, l.Config.NumHiddenLayers),
        MambaForCausalLM m => (m.Config.Architecture, m.Config.HiddenSize, m.Config.NumHiddenLayers),
        _ => throw Unsupported(model),
    };

    /// <summary>End-of-sequence ids from the model's config.</summary>
    public static IReadOnlyList<int> EosTokenIds(ICausalLM model) => model switch
    {
        LlamaForCausalLM l => l.Config.EosTokenIds,
        MambaForCausalLM m => m.Config.EosTokenId is int e ? new[] { e } : Array.Empty<int>(),
        _ => throw Unsupported(model),
    };

    /// <summary>
    /// Makes <paramref name="router"/> part of block <paramref name="layer"/> (so its weight is named like the
    /// block's other parameters) and calls <paramref name="route"/> with the block's normalised input: the
    /// hidden state entering the attention (Llama family) or the mixer (Mamba). Returns the router's module name.
    /// </summary>
    public static string AttachBlockRouter(ICausalLM model, int layer, nn.Module router, Action<BlockInput> route)
    {
        switch (model)
        {
            case LlamaForCausalLM l:
                l.model.layers[layer].register_module("router", router);
                l.model.layers[layer].AttentionInputObserver = route;
                return $"model.layers.{layer}.router";
            case MambaForCausalLM m:
                m.backbone.layers[layer].mixer.register_module("router", router);
                m.backbone.layers[layer].MixerInputObserver = route;
                return $"backbone.layers.{layer}.mixer.router";
            default:
                throw Unsupported(model);
        }
    }

    /// <summary>
    /// Makes <paramref name="router"/> part of the MLP of block <paramref name="layer"/> and calls
    /// <paramref name="route"/> with the MLP's normalised input (MixLoRA's router). Llama family only: Mamba
    /// blocks have no MLP. Returns the router's module name.
    /// </summary>
    public static string AttachMlpRouter(ICausalLM model, int layer, nn.Module router, Action<Tensor> route)
    {
        if (model is not LlamaForCausalLM l)
            throw new NotSupportedException($"{model.GetType().Name} has no MLP to route (MixLoRA needs a Llama-family model)");
        l.model.layers[layer].mlp.register_module("router", router);
        l.model.layers[layer].MlpInputObserver = route;
        return $"model.layers.{layer}.mlp.router";
    }

    private static NotSupportedException Unsupported(ICausalLM model) =>
        new($"{model.GetType().Name} is not supported by adapters; supported: Llama family and Mamba");
}
