using System.Globalization;
using LoraMixer.IO;
using LoraMixer.Models.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Models.Mamba;

/// <summary>
/// The Mamba-1 family (Mamba, Falcon-Mamba): LoRA-Mixer targets in_proj/out_proj by default, the block router
/// reads the normalised input of the mixer; blocks have no MLP.
/// </summary>
public sealed class MambaFamily : IModelFamily
{
    /// <summary>The one instance, registered in <see cref="ModelFamilies"/>.</summary>
    public static readonly MambaFamily Instance = new();

    /// <summary>The mixer's projections before and after the selective scan: the default targets.</summary>
    public static readonly IReadOnlyList<string> MixerProjections = new[] { "in_proj", "out_proj" };

    /// <summary>Every short name that can be targeted in a block.</summary>
    public static readonly IReadOnlyList<string> Linears = new[] { "in_proj", "x_proj", "dt_proj", "out_proj" };

    private MambaFamily() { }

    /// <inheritdoc />
    public string Name => "mamba";

    /// <inheritdoc />
    public string Description => "Mamba-1 family (Mamba, Falcon-Mamba)";

    /// <inheritdoc />
    public IReadOnlyList<string> Architectures => MambaConfig.SupportedArchitectures;

    /// <inheritdoc />
    public IReadOnlyList<string> ModelTypes => MambaConfig.SupportedModelTypes;

    /// <inheritdoc />
    public IReadOnlyList<string> DefaultTargets => MixerProjections;

    /// <inheritdoc />
    public IReadOnlyList<string> TargetableLinears => Linears;

    /// <inheritdoc />
    public ICausalLM Load(string modelDir, Device? device = null) => MambaLoader.Load(modelDir, device);

    /// <inheritdoc />
    public IReadOnlyList<(string Field, string Value)> Inspect(string modelDir, SafeTensorsCheckpoint checkpoint)
    {
        var config = MambaConfig.Load(modelDir);
        MambaLoader.CheckWeights(config, checkpoint, modelDir);
        return new (string, string)[]
        {
            ("architecture", config.Architecture),
            ("model_type", config.ModelType),
            ("parameters", config.ParameterCount().ToString("N0", CultureInfo.InvariantCulture)),
            ("vocab_size", config.VocabSize.ToString(CultureInfo.InvariantCulture)),
            ("hidden_size / d_inner", $"{config.HiddenSize} / {config.IntermediateSize}"),
            ("num_hidden_layers", config.NumHiddenLayers.ToString(CultureInfo.InvariantCulture)),
            ("state_size / conv_kernel / time_step_rank", $"{config.StateSize} / {config.ConvKernel} / {config.TimeStepRank}"),
            ("B/C/Δ RMS norm (Falcon-Mamba)", config.NormalizesBcDt.ToString()),
            ("tie_word_embeddings", config.TieWordEmbeddings.ToString()),
        };
    }

    /// <inheritdoc />
    public (string Architecture, int HiddenSize, int Layers) Describe(ICausalLM model)
    {
        var config = Own(model).Config;
        return (config.Architecture, config.HiddenSize, config.NumHiddenLayers);
    }

    /// <inheritdoc />
    public IReadOnlyList<int> EosTokenIds(ICausalLM model) =>
        Own(model).Config.EosTokenId is int e ? new[] { e } : Array.Empty<int>();

    /// <inheritdoc />
    public IReadOnlyList<TargetLinear> FindLinears(ICausalLM model, Func<string, bool> isTarget)
    {
        var mamba = Own(model);
        var found = new List<TargetLinear>();
        for (int i = 0; i < mamba.backbone.layers.Count; i++)
        {
            var mixer = mamba.backbone.layers[i].mixer;
            string prefix = $"backbone.layers.{i}.mixer";
            TargetLinear.Collect(found, isTarget, i, prefix, "in_proj", mixer, mixer.in_proj, x => mixer.in_proj = x);
            TargetLinear.Collect(found, isTarget, i, prefix, "x_proj", mixer, mixer.x_proj, x => mixer.x_proj = x);
            TargetLinear.Collect(found, isTarget, i, prefix, "dt_proj", mixer, mixer.dt_proj, x => mixer.dt_proj = x);
            TargetLinear.Collect(found, isTarget, i, prefix, "out_proj", mixer, mixer.out_proj, x => mixer.out_proj = x);
        }
        return found;
    }

    /// <inheritdoc />
    public string AttachBlockRouter(ICausalLM model, int layer, nn.Module router, Action<BlockInput> route)
    {
        var block = Own(model).backbone.layers[layer];
        block.mixer.register_module("router", router);
        block.MixerInputObserver = route;
        return $"backbone.layers.{layer}.mixer.router";
    }

    /// <inheritdoc />
    public string AttachMlpRouter(ICausalLM model, int layer, nn.Module router, Action<Tensor> route) =>
        throw new NotSupportedException(
            $"{Describe(model).Architecture} blocks have no MLP to route; MixLoRA needs a model whose blocks have an MLP (the Llama family)");

    private static MambaForCausalLM Own(ICausalLM model) =>
        model as MambaForCausalLM ?? throw new ArgumentException($"{model.GetType().Name} is not a Mamba model", nameof(model));
}
