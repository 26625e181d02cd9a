using System.Text.Json;
using System.Text.Json.Serialization;

namespace LoraMixer.Models.Mamba;

/// <summary>The fields of a Mamba <c>config.json</c> as written (absent = null), before defaults and checks.</summary>
internal sealed class MambaConfigJson
{
    [JsonPropertyName("architectures")] public string[]? Architectures { get; init; }
    [JsonPropertyName("model_type")] public string? ModelType { get; init; }
    [JsonPropertyName("vocab_size")] public int? VocabSize { get; init; }
    [JsonPropertyName("hidden_size")] public int? HiddenSize { get; init; }
    [JsonPropertyName("state_size")] public int? StateSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public int? NumHiddenLayers { get; init; }
    [JsonPropertyName("expand")] public double? Expand { get; init; }
    [JsonPropertyName("intermediate_size")] public int? IntermediateSize { get; init; }
    [JsonPropertyName("conv_kernel")] public int? ConvKernel { get; init; }
    /// <summary>An integer or "auto".</summary>
    [JsonPropertyName("time_step_rank")] public JsonElement? TimeStepRank { get; init; }
    [JsonPropertyName("use_bias")] public bool? UseBias { get; init; }
    [JsonPropertyName("use_conv_bias")] public bool? UseConvBias { get; init; }
    [JsonPropertyName("layer_norm_epsilon")] public double? LayerNormEpsilon { get; init; }
    [JsonPropertyName("mixer_rms_eps")] public double? MixerRmsEps { get; init; }
    [JsonPropertyName("tie_word_embeddings")] public bool? TieWordEmbeddings { get; init; }
    [JsonPropertyName("hidden_act")] public string? HiddenAct { get; init; }
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; }
    [JsonPropertyName("eos_token_id")] public int? EosTokenId { get; init; }
}
