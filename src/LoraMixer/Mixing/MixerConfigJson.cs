using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace LoraMixer.Mixing;

/// <summary>The fields of <c>mixer_config.json</c> as written (absent = null), before defaults and checks.</summary>
internal sealed class MixerConfigJson
{
    [JsonPropertyName("base_model")] public string? BaseModel { get; init; }
    [JsonPropertyName("architecture")] public string? Architecture { get; init; }
    [JsonPropertyName("hidden_size")] public int? HiddenSize { get; init; }
    [JsonPropertyName("num_hidden_layers")] public int? NumHiddenLayers { get; init; }
    [JsonPropertyName("targets")] public string[]? Targets { get; init; }
    [JsonPropertyName("router_scope")] public string? RouterScope { get; init; }
    [JsonPropertyName("router_input")] public string? RouterInput { get; init; }
    [JsonPropertyName("router_input_norm")] public string? RouterInputNorm { get; init; }
    [JsonPropertyName("routing_granularity")] public string? RoutingGranularity { get; init; }
    [JsonPropertyName("top_k")] public int? TopK { get; init; }
    [JsonPropertyName("renormalize")] public bool? Renormalize { get; init; }
    [JsonPropertyName("router_temperature")] public double? RouterTemperature { get; init; }
    [JsonPropertyName("experts")] public ExpertJson[]? Experts { get; init; }
    [JsonPropertyName("training")] public JsonObject? Training { get; init; }

    /// <summary>One entry of <c>experts</c>.</summary>
    internal sealed class ExpertJson
    {
        [JsonPropertyName("name")] public string? Name { get; init; }
        [JsonPropertyName("path")] public string? Path { get; init; }
    }
}
