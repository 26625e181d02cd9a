using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Errors;

namespace LoraMixer.Models;

/// <summary>
/// The <c>config.json</c> of a Llama-family decoder (Llama, Mistral, Qwen2, SmolLM): one model
/// implementation configured by these fields. Names follow Hugging Face transformers.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>Architectures this implementation runs, as written in <c>architectures</c>.</summary>
    public static readonly IReadOnlyList<string> SupportedArchitectures =
        new[] { "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM" };

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
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file))
            throw new ModelFormatException(Directory.Exists(path)
                ? $"model folder {path} has no config.json; point --model at a Hugging Face model folder"
                : $"{path} does not exist; point --model at a Hugging Face model folder");
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(file)) as JsonObject
                ?? throw new ModelFormatException($"{file}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{file}: invalid JSON ({e.Message})", e);
        }
        return FromJson(json, file);
    }

    /// <summary>Builds the config from parsed JSON; <paramref name="file"/> names the source in errors.</summary>
    public static LlamaConfig FromJson(JsonObject json, string file)
    {
        var reader = new ConfigReader(json, file);
        string architecture = reader.Architecture();
        if (!SupportedArchitectures.Contains(architecture))
            throw new ModelFormatException(
                $"{file}: architecture '{architecture}' is not supported; supported: {string.Join(", ", SupportedArchitectures)}");
        string modelType = reader.OptionalString("model_type") ?? architecture.Replace("ForCausalLM", "").ToLowerInvariant();
        bool qwen2 = architecture == "Qwen2ForCausalLM";

        int hidden = reader.RequiredInt("hidden_size");
        int heads = reader.RequiredInt("num_attention_heads");
        int kvHeads = reader.OptionalInt("num_key_value_heads") ?? heads;
        int? headDim = reader.OptionalInt("head_dim");
        if (headDim is null && hidden % heads != 0)
            throw new ModelFormatException($"{file}: hidden_size {hidden} is not divisible by num_attention_heads {heads}; add head_dim");
        if (heads % kvHeads != 0)
            throw new ModelFormatException($"{file}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        string act = reader.OptionalString("hidden_act") ?? "silu";
        if (act != "silu")
            throw new ModelFormatException($"{file}: hidden_act '{act}' is not supported; only silu (SwiGLU) is");
        bool attentionBias = reader.OptionalBool("attention_bias") ?? false;

        var config = new LlamaConfig
        {
            Architecture = architecture,
            ModelType = modelType,
            VocabSize = reader.RequiredInt("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = reader.RequiredInt("intermediate_size"),
            NumHiddenLayers = reader.RequiredInt("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim ?? hidden / heads,
            MaxPositionEmbeddings = reader.OptionalInt("max_position_embeddings") ?? (qwen2 ? 32768 : 2048),
            RmsNormEps = reader.OptionalDouble("rms_norm_eps") ?? 1e-6,
            RopeTheta = reader.OptionalDouble("rope_theta") ?? 10000.0,
            RopeScaling = reader.RopeScaling(),
            TieWordEmbeddings = reader.OptionalBool("tie_word_embeddings") ?? false,
            QkvBias = qwen2 || attentionBias,
            OutputBias = !qwen2 && attentionBias,
            BosTokenId = reader.OptionalInt("bos_token_id"),
            EosTokenIds = reader.IntOrIntList("eos_token_id"),
        };
        return config;
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

    private sealed class ConfigReader(JsonObject json, string file)
    {
        public string Architecture()
        {
            if (json["architectures"] is JsonArray { Count: > 0 } list && list[0] is JsonValue v && v.TryGetValue(out string? name))
                return name;
            return (OptionalString("model_type")) switch
            {
                "llama" => "LlamaForCausalLM",
                "mistral" => "MistralForCausalLM",
                "qwen2" => "Qwen2ForCausalLM",
                null => throw new ModelFormatException($"{file}: neither 'architectures' nor 'model_type' is set; supported: {string.Join(", ", SupportedArchitectures)}"),
                var other => throw new ModelFormatException($"{file}: model_type '{other}' is not supported; supported: {string.Join(", ", SupportedArchitectures)}"),
            };
        }

        public int RequiredInt(string key) =>
            OptionalInt(key) ?? throw new ModelFormatException($"{file}: required field '{key}' is missing");

        public int? OptionalInt(string key)
        {
            var node = json[key];
            if (node is null) return null;
            if (AsNumber(node) is double x && x == Math.Floor(x) && x is >= 0 and <= int.MaxValue) return (int)x;
            throw new ModelFormatException($"{file}: field '{key}' must be a non-negative integer, got {node.ToJsonString()}");
        }

        public double? OptionalDouble(string key)
        {
            var node = json[key];
            if (node is null) return null;
            if (AsNumber(node) is double d && double.IsFinite(d)) return d;
            throw new ModelFormatException($"{file}: field '{key}' must be a number, got {node.ToJsonString()}");
        }

        // A JsonValue may wrap a JsonElement (parsed) or a CLR number (built in code); both serialise to a JSON number.
        private static double? AsNumber(JsonNode node) =>
            node is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number
                ? double.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture)
                : null;

        public bool? OptionalBool(string key)
        {
            var node = json[key];
            if (node is null) return null;
            if (node is JsonValue v && v.TryGetValue(out bool b)) return b;
            throw new ModelFormatException($"{file}: field '{key}' must be true or false, got {node.ToJsonString()}");
        }

        public string? OptionalString(string key)
        {
            var node = json[key];
            if (node is null) return null;
            if (node is JsonValue v && v.TryGetValue(out string? s)) return s;
            throw new ModelFormatException($"{file}: field '{key}' must be a string, got {node.ToJsonString()}");
        }

        public IReadOnlyList<int> IntOrIntList(string key)
        {
            var node = json[key];
            if (node is null) return Array.Empty<int>();
            if (node is JsonArray array)
                return array.Select(item => item is not null && AsNumber(item) is double x && x == Math.Floor(x) && Math.Abs(x) <= int.MaxValue ? (int)x
                    : throw new ModelFormatException($"{file}: '{key}' must hold integers, got {node.ToJsonString()}")).ToArray();
            return new[] { OptionalInt(key)!.Value };
        }

        public RopeScaling? RopeScaling()
        {
            if (json["rope_scaling"] is not JsonObject scaling) return null;
            var sub = new ConfigReader(scaling, file + " (rope_scaling)");
            string type = sub.OptionalString("rope_type") ?? sub.OptionalString("type")
                ?? throw new ModelFormatException($"{file}: rope_scaling has no 'rope_type'");
            if (type == "default") return null;
            double factor = sub.OptionalDouble("factor")
                ?? throw new ModelFormatException($"{file}: rope_scaling of type {type} needs 'factor'");
            if (factor <= 0) throw new ModelFormatException($"{file}: rope_scaling factor must be positive");
            return type switch
            {
                "linear" => new RopeScaling("linear", factor),
                "llama3" => new RopeScaling("llama3", factor,
                    sub.OptionalDouble("low_freq_factor") ?? 1.0,
                    sub.OptionalDouble("high_freq_factor") ?? 4.0,
                    sub.OptionalInt("original_max_position_embeddings") ?? 8192),
                _ => throw new ModelFormatException($"{file}: rope_scaling type '{type}' is not supported; supported: linear, llama3"),
            };
        }
    }
}
