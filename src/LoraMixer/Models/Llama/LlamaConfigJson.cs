using System.Text.Json.Serialization;
using LoraMixer.IO;

namespace LoraMixer.Models.Llama;

/// <summary>The fields of a Llama-family <c>config.json</c> as written (absent = null), before defaults and checks.</summary>
internal sealed class LlamaConfigJson
{
    [JsonPropertyName("architectures")] public string[]? Architectures { get; init; }
    [JsonPropertyName("model_type")] public string? ModelType { get; init; }
    [JsonPropertyName("vocab_size")] public int? VocabSize { get; init; }
    [JsonPropertyName("hidden_size")] public int? HiddenSize { get; init; }
    [JsonPropertyName("intermediate_size")] public int? IntermediateSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public int? NumHiddenLayers { get; init; }
    [JsonPropertyName("num_attention_heads")] public int? NumAttentionHeads { get; init; }
    [JsonPropertyName("num_key_value_heads")] public int? NumKeyValueHeads { get; init; }
    [JsonPropertyName("head_dim")] public int? HeadDim { get; init; }
    [JsonPropertyName("max_position_embeddings")] public int? MaxPositionEmbeddings { get; init; }
    [JsonPropertyName("rms_norm_eps")] public double? RmsNormEps { get; init; }
    [JsonPropertyName("rope_theta")] public double? RopeTheta { get; init; }
    [JsonPropertyName("rope_scaling")] public RopeScalingJson? RopeScaling { get; init; }
    [JsonPropertyName("tie_word_embeddings")] public bool? TieWordEmbeddings { get; init; }
    [JsonPropertyName("attention_bias")] public bool? AttentionBias { get; init; }
    [JsonPropertyName("hidden_act")] public string? HiddenAct { get; init; }
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; }
    [JsonPropertyName("eos_token_id"), JsonConverter(typeof(IntOrIntListConverter))] public int[]? EosTokenId { get; init; }

    /// <summary>The <c>rope_scaling</c> object as written.</summary>
    internal sealed class RopeScalingJson
    {
        [JsonPropertyName("rope_type")] public string? RopeType { get; init; }
        [JsonPropertyName("type")] public string? Type { get; init; }
        [JsonPropertyName("factor")] public double? Factor { get; init; }
        [JsonPropertyName("low_freq_factor")] public double? LowFreqFactor { get; init; }
        [JsonPropertyName("high_freq_factor")] public double? HighFreqFactor { get; init; }
        [JsonPropertyName("original_max_position_embeddings")] public int? OriginalMaxPositionEmbeddings { get; init; }
    }
}
