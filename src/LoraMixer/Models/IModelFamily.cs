using LoraMixer.IO;
using LoraMixer.Models.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Models;

/// <summary>
/// One model family (one folder under <c>Models/</c>): which configs it loads, and what adapter and mixer
/// code needs to know about its models — the per-family mapping PEFT keeps for target modules. Registered
/// once in <see cref="ModelFamilies"/>.
/// </summary>
public interface IModelFamily
{
    /// <summary>Short name, e.g. <c>llama</c>.</summary>
    string Name { get; }

    /// <summary>One line for <c>inspect</c>: the family and the variants it covers.</summary>
    string Description { get; }

    /// <summary>The <c>architectures</c> entries of the configs this family loads.</summary>
    IReadOnlyList<string> Architectures { get; }

    /// <summary>The <c>model_type</c> values of the configs this family loads.</summary>
    IReadOnlyList<string> ModelTypes { get; }

    /// <summary>The LoRA-Mixer's default target projections (short names).</summary>
    IReadOnlyList<string> DefaultTargets { get; }

    /// <summary>Every short name of a block linear that adapters can target.</summary>
    IReadOnlyList<string> TargetableLinears { get; }

    /// <summary>
    /// Loads the model in <paramref name="modelDir"/> onto <paramref name="device"/> in float32, frozen and in
    /// evaluation mode, after checking the config's values and that the weights match it exactly.
    /// </summary>
    ICausalLM Load(string modelDir, Device? device = null);

    /// <summary>Reads and checks the config of <paramref name="modelDir"/> against <paramref name="checkpoint"/>; returns rows for <c>inspect</c>.</summary>
    IReadOnlyList<(string Field, string Value)> Inspect(string modelDir, SafeTensorsCheckpoint checkpoint);

    /// <summary>Architecture, hidden size and number of blocks of a model of this family.</summary>
    (string Architecture, int HiddenSize, int Layers) Describe(ICausalLM model);

    /// <summary>End-of-sequence ids from the model's config.</summary>
    IReadOnlyList<int> EosTokenIds(ICausalLM model);

    /// <summary>The block linears whose full module name satisfies <paramref name="isTarget"/>, in module-name order.</summary>
    IReadOnlyList<TargetLinear> FindLinears(ICausalLM model, Func<string, bool> isTarget);

    /// <summary>
    /// Makes <paramref name="router"/> part of block <paramref name="layer"/> and calls <paramref name="route"/>
    /// with the block's normalised input; returns the router's module name.
    /// </summary>
    string AttachBlockRouter(ICausalLM model, int layer, nn.Module router, Action<BlockInput> route);

    /// <summary>
    /// Makes <paramref name="router"/> part of the MLP of block <paramref name="layer"/> and calls
    /// <paramref name="route"/> with the MLP's normalised input; a family without MLPs refuses.
    /// </summary>
    string AttachMlpRouter(ICausalLM model, int layer, nn.Module router, Action<Tensor> route);
}
