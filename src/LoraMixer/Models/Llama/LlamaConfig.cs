using System.Text.Json.Nodes;
using LoraMixer.Errors;
using LoraMixer.IO;

namespace LoraMixer.Models.Llama;

/// <summary>
/// The <c>config.json</c> of a Llama-family decoder (Llama, Mistral, Qwen2, SmolLM): one model
/// implementation configured by these fields. Names follow Hugging Face transformers.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>Architectures this implementation runs, as written in <c>architectures</c>.</summary>
    public static readonly IReadOnlyList<string> SupportedArchitectures =
        new[] { "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM" };

    /// <summary><c>model_type</c> values of <see cref="SupportedArchitectures"/>, in the same order.</summary>
    public static readonly IReadOnlyList<string> SupportedModelTypes = new[] { "llama", "mistral", "qwen2" };

    /// <summary>The architecture named in the config.</summary>
    public required string Architecture { get; init; }
    /// <summary><c>model_type</c>: llama, mistral or qwen2.</summary>
    public required string ModelType { get; init; }
    /// <summary><c>vocab_size</c>.</summary>
    public required int VocabSize { get; init; }
    /// <summary><c>hidden_size</c>.</summary>
    public required int HiddenSize { get; init; }
    /// <summary><c>intermediate_size</c> of the SwiGLU MLP.</summary>
    public required int IntermediateSize { get; init; }
    /// <summary><c>num_hidden_layers</c>.</summary>
    public required int NumHiddenLayers { get; init; }
    /// <summary><c>num_attention_heads</c>.</summary>
    public required int NumAttentionHeads { get; init; }
    /// <summary><c>num_key_value_heads</c> (GQA; 1 = MQA); defaults to the attention heads.</summary>
    public required int NumKeyValueHeads { get; init; }
    /// <summary><c>head_dim</c>, or hidden_size / num_attention_heads when absent.</summary>
    public required int HeadDim { get; init; }
    /// <summary><c>max_position_embeddings</c>.</summary>
    public required int MaxPositionEmbeddings { get; init; }
    /// <summary><c>rms_norm_eps</c>.</summary>
    public required double RmsNormEps { get; init; }
    /// <summary><c>rope_theta</c>.</summary>
    public required double RopeTheta { get; init; }
    /// <summary><c>rope_scaling</c>, when present.</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary><c>tie_word_embeddings</c>: the LM head reuses the embedding matrix.</summary>
    public required bool TieWordEmbeddings { get; init; }
    /// <summary>q/k/v projections carry a bias (always for Qwen2; <c>attention_bias</c> otherwise).</summary>
    public required bool QkvBias { get; init; }
    /// <summary>o_proj carries a bias (<c>attention_bias</c> of Llama).</summary>
    public required bool OutputBias { get; init; }
    /// <summary><c>bos_token_id</c>, when given.</summary>
    public int? BosTokenId { get; init; }
    /// <summary><c>eos_token_id</c> (one id or a list), possibly empty.</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = Array.Empty<int>();

    /// <summary>Reads and validates <c>config.json</c> of a model folder (or the file itself).</summary>
    public static LlamaConfig Load(string path)
    {
        var (json, file) = HfConfigFile.Read(path);
        return FromJson(json, file);
    }

    /// <summary>
    /// Builds the config from parsed JSON with the defaults of transformers and checks every value;
    /// <paramref name="file"/> names the source in errors.
    /// </summary>
    public static LlamaConfig FromJson(JsonObject json, string file)
    {
        var raw = HfConfigFile.Deserialize<LlamaConfigJson>(json, file);
        string architecture = ArchitectureOf(raw, file);
        string modelType = raw.ModelType ?? SupportedModelTypes[SupportedArchitectures.ToList().IndexOf(architecture)];
        bool qwen2 = architecture == "Qwen2ForCausalLM";
        var check = new ConfigCheck(file);

        int hidden = check.Positive("hidden_size", raw.HiddenSize);
        int heads = check.Positive("num_attention_heads", raw.NumAttentionHeads);
        int kvHeads = check.Positive("num_key_value_heads", raw.NumKeyValueHeads ?? heads);
        if (heads % kvHeads != 0)
            throw new ModelFormatException($"{file}: num_key_value_heads {kvHeads} does not divide num_attention_heads {heads}; use a divisor of {heads}");
        int? headDim = raw.HeadDim is null ? null : check.Positive("head_dim", raw.HeadDim);
        if (headDim is null && hidden % heads != 0)
            throw new ModelFormatException($"{file}: hidden_size {hidden} is not divisible by num_attention_heads {heads}; add head_dim");
        string act = raw.HiddenAct ?? "silu";
        if (act != "silu")
            throw new ModelFormatException($"{file}: hidden_act '{act}' is not supported; only silu (SwiGLU) is");
        bool attentionBias = raw.AttentionBias ?? false;

        return new LlamaConfig
        {
            Architecture = architecture,
            ModelType = modelType,
            VocabSize = check.Positive("vocab_size", raw.VocabSize),
            HiddenSize = hidden,
            IntermediateSize = check.Positive("intermediate_size", raw.IntermediateSize),
            NumHiddenLayers = check.Positive("num_hidden_layers", raw.NumHiddenLayers),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim ?? hidden / heads,
            MaxPositionEmbeddings = check.Positive("max_position_embeddings", raw.MaxPositionEmbeddings ?? (qwen2 ? 32768 : 2048)),
            RmsNormEps = check.Positive("rms_norm_eps", raw.RmsNormEps ?? 1e-6),
            RopeTheta = check.Positive("rope_theta", raw.RopeTheta ?? 10000.0),
            RopeScaling = RopeScalingOf(raw.RopeScaling, check),
            TieWordEmbeddings = raw.TieWordEmbeddings ?? false,
            QkvBias = qwen2 || attentionBias,
            OutputBias = !qwen2 && attentionBias,
            BosTokenId = raw.BosTokenId,
            EosTokenIds = raw.EosTokenId ?? Array.Empty<int>(),
        };
    }

    private static string ArchitectureOf(LlamaConfigJson raw, string file)
    {
        string supported = $"supported: {string.Join(", ", SupportedArchitectures)}";
        if (raw.Architectures is { Length: > 0 } list)
            return SupportedArchitectures.Contains(list[0])
                ? list[0]
                : throw new ModelFormatException($"{file}: architecture '{list[0]}' is not supported; {supported}");
        if (raw.ModelType is null)
            throw new ModelFormatException($"{file}: neither 'architectures' nor 'model_type' is set; {supported}");
        int index = SupportedModelTypes.ToList().IndexOf(raw.ModelType);
        return index >= 0
            ? SupportedArchitectures[index]
            : throw new ModelFormatException($"{file}: model_type '{raw.ModelType}' is not supported; {supported}");
    }

    // transformers' rope_config_validation: a known type with its required fields; "default" means none.
    private static RopeScaling? RopeScalingOf(LlamaConfigJson.RopeScalingJson? raw, ConfigCheck check)
    {
        if (raw is null) return null;
        string type = raw.RopeType ?? raw.Type
            ?? throw new ModelFormatException($"{check.File}: rope_scaling has no 'rope_type'; set it to one of {RopeScaling.SupportedTypes} (or remove rope_scaling)");
        if (type == "default") return null;
        if (!RopeScaling.SupportedTypes.Split(", ").Contains(type))
            throw new ModelFormatException($"{check.File}: rope_scaling.rope_type '{type}' is not supported; supported: {RopeScaling.SupportedTypes}");
        double factor = check.Positive("rope_scaling.factor", check.Required("rope_scaling.factor", raw.Factor));
        if (type == "linear") return new RopeScaling("linear", factor);
        double low = check.Positive("rope_scaling.low_freq_factor", check.Required("rope_scaling.low_freq_factor", raw.LowFreqFactor));
        double high = check.Positive("rope_scaling.high_freq_factor", check.Required("rope_scaling.high_freq_factor", raw.HighFreqFactor));
        if (high <= low)
            throw new ModelFormatException($"{check.File}: rope_scaling.high_freq_factor {high} must be greater than low_freq_factor {low}");
        int original = check.Positive("rope_scaling.original_max_position_embeddings",
            check.Required("rope_scaling.original_max_position_embeddings", raw.OriginalMaxPositionEmbeddings));
        return new RopeScaling("llama3", factor, low, high, original);
    }

    /// <summary>The config as Hugging Face writes <c>config.json</c> (Llama/Mistral only; rope scaling omitted when null).</summary>
    public JsonObject ToJson()
    {
        if (RopeScaling is not null) throw new NotSupportedException("writing rope_scaling is not supported");
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(JsonValue.Create(Architecture)),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["head_dim"] = HeadDim,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["attention_bias"] = QkvBias,
            ["hidden_act"] = "silu",
            ["torch_dtype"] = "float32",
        };
        if (BosTokenId is int bos) json["bos_token_id"] = bos;
        if (EosTokenIds.Count == 1) json["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Count > 1) json["eos_token_id"] = new JsonArray(EosTokenIds.Select(e => (JsonNode)JsonValue.Create(e)!).ToArray());
        return json;
    }

    /// <summary>Number of parameters of the model this config describes.</summary>
    public long ParameterCount()
    {
        long qOut = (long)NumAttentionHeads * HeadDim, kvOut = (long)NumKeyValueHeads * HeadDim;
        long attention = HiddenSize * (qOut + 2 * kvOut) + qOut * HiddenSize
            + (QkvBias ? qOut + 2 * kvOut : 0) + (OutputBias ? HiddenSize : 0);
        long mlp = 3L * HiddenSize * IntermediateSize;
        long layer = attention + mlp + 2L * HiddenSize;
        long embeddings = (long)VocabSize * HiddenSize * (TieWordEmbeddings ? 1 : 2);
        return NumHiddenLayers * layer + embeddings + HiddenSize;
    }
}
