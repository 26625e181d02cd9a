using System.Globalization;
using LoraMixer.IO;
using LoraMixer.Models.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Models.Llama;

/// <summary>
/// The Llama family (Llama, Mistral, Qwen2, SmolLM): LoRA-Mixer targets q/k/v/o by default, the block router
/// reads the normalised input of the attention, and MixLoRA's router the input of the MLP.
/// </summary>
public sealed class LlamaFamily : IModelFamily
{
    /// <summary>The one instance, registered in <see cref="ModelFamilies"/>.</summary>
    public static readonly LlamaFamily Instance = new();

    /// <summary>The attention projections: the LoRA-Mixer default targets (docs/method.md §1).</summary>
    public static readonly IReadOnlyList<string> AttentionProjections = new[] { "q_proj", "k_proj", "v_proj", "o_proj" };

    /// <summary>Every short name that can be targeted in a block.</summary>
    public static readonly IReadOnlyList<string> Linears = new[] { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj" };

    private LlamaFamily() { }

    /// <inheritdoc />
    public string Name => "llama";

    /// <inheritdoc />
    public string Description => "Llama family (Llama, Mistral, Qwen2, SmolLM)";

    /// <inheritdoc />
    public IReadOnlyList<string> Architectures => LlamaConfig.SupportedArchitectures;

    /// <inheritdoc />
    public IReadOnlyList<string> ModelTypes => LlamaConfig.SupportedModelTypes;

    /// <inheritdoc />
    public IReadOnlyList<string> DefaultTargets => AttentionProjections;

    /// <inheritdoc />
    public IReadOnlyList<string> TargetableLinears => Linears;

    /// <inheritdoc />
    public ICausalLM Load(string modelDir, Device? device = null) => LlamaLoader.Load(modelDir, device);

    /// <inheritdoc />
    public IReadOnlyList<(string Field, string Value)> Inspect(string modelDir, SafeTensorsCheckpoint checkpoint)
    {
        var config = LlamaConfig.Load(modelDir);
        LlamaLoader.CheckWeights(config, checkpoint, modelDir);
        return new (string, string)[]
        {
            ("architecture", config.Architecture),
            ("model_type", config.ModelType),
            ("parameters", config.ParameterCount().ToString("N0", CultureInfo.InvariantCulture)),
            ("vocab_size", Str(config.VocabSize)),
            ("hidden_size", Str(config.HiddenSize)),
            ("intermediate_size", Str(config.IntermediateSize)),
            ("num_hidden_layers", Str(config.NumHiddenLayers)),
            ("attention heads / kv heads / head_dim", $"{config.NumAttentionHeads} / {config.NumKeyValueHeads} / {config.HeadDim}"),
            ("max_position_embeddings", Str(config.MaxPositionEmbeddings)),
            ("rope_theta", Str(config.RopeTheta)),
            ("rope_scaling", config.RopeScaling is null ? "none" : $"{config.RopeScaling.Type} ×{Str(config.RopeScaling.Factor)}"),
            ("rms_norm_eps", Str(config.RmsNormEps)),
            ("tie_word_embeddings", config.TieWordEmbeddings.ToString()),
            ("q/k/v bias", config.QkvBias.ToString()),
        };
    }

    /// <inheritdoc />
    public (string Architecture, int HiddenSize, int Layers) Describe(ICausalLM model)
    {
        var config = Own(model).Config;
        return (config.Architecture, config.HiddenSize, config.NumHiddenLayers);
    }

    /// <inheritdoc />
    public IReadOnlyList<int> EosTokenIds(ICausalLM model) => Own(model).Config.EosTokenIds;

    /// <inheritdoc />
    public IReadOnlyList<TargetLinear> FindLinears(ICausalLM model, Func<string, bool> isTarget)
    {
        var llama = Own(model);
        var found = new List<TargetLinear>();
        for (int i = 0; i < llama.model.layers.Count; i++)
        {
            var layer = llama.model.layers[i];
            var attn = layer.self_attn;
            var mlp = layer.mlp;
            string a = $"model.layers.{i}.self_attn", m = $"model.layers.{i}.mlp";
            TargetLinear.Collect(found, isTarget, i, a, "q_proj", attn, attn.q_proj, x => attn.q_proj = x);
            TargetLinear.Collect(found, isTarget, i, a, "k_proj", attn, attn.k_proj, x => attn.k_proj = x);
            TargetLinear.Collect(found, isTarget, i, a, "v_proj", attn, attn.v_proj, x => attn.v_proj = x);
            TargetLinear.Collect(found, isTarget, i, a, "o_proj", attn, attn.o_proj, x => attn.o_proj = x);
            TargetLinear.Collect(found, isTarget, i, m, "gate_proj", mlp, mlp.gate_proj, x => mlp.gate_proj = x);
            TargetLinear.Collect(found, isTarget, i, m, "up_proj", mlp, mlp.up_proj, x => mlp.up_proj = x);
            TargetLinear.Collect(found, isTarget, i, m, "down_proj", mlp, mlp.down_proj, x => mlp.down_proj = x);
        }
        return found;
    }

    /// <inheritdoc />
    public string AttachBlockRouter(ICausalLM model, int layer, nn.Module router, Action<BlockInput> route)
    {
        var block = Own(model).model.layers[layer];
        block.register_module("router", router);
        block.AttentionInputObserver = route;
        return $"model.layers.{layer}.router";
    }

    /// <inheritdoc />
    public string AttachMlpRouter(ICausalLM model, int layer, nn.Module router, Action<Tensor> route)
    {
        var block = Own(model).model.layers[layer];
        block.mlp.register_module("router", router);
        block.MlpInputObserver = route;
        return $"model.layers.{layer}.mlp.router";
    }

    private static LlamaForCausalLM Own(ICausalLM model) =>
        model as LlamaForCausalLM ?? throw new ArgumentException($"{model.GetType().Name} is not a Llama-family model", nameof(model));

    private static string Str(double value) => value.ToString(CultureInfo.InvariantCulture);
}
