using System.Text.Json.Nodes;

namespace LoraMixer.Mixing;

/// <summary>One router's part of a routing diagnosis (shares in [0, 1]; NaN where nothing was measured).</summary>
/// <param name="Router">Router name, e.g. <c>model.layers.0.router</c>.</param>
/// <param name="PromptConsistency">Share of prompt tokens whose top-1 expert is their sample's task expert.</param>
/// <param name="ResponseConsistency">The same over response tokens.</param>
/// <param name="ProbeLastPrompt">Held-out accuracy of a linear probe naming the task from the router's input at the last prompt token.</param>
/// <param name="ProbeResponse">The same from the router's input at response tokens.</param>
public sealed record LayerDiagnosis(string Router, double PromptConsistency, double ResponseConsistency, double ProbeLastPrompt, double ProbeResponse);

/// <summary>
/// What <see cref="RoutingDiagnosis.Run"/> measured: per router, task consistency and the linear-probe ceiling;
/// for the whole mixer, exact match and response loss with learned routing against routing forced to each
/// sample's own expert (the gap that routing alone costs).
/// </summary>
public sealed record RoutingDiagnosisResult(
    IReadOnlyList<string> Tasks,
    IReadOnlyList<LayerDiagnosis> Layers,
    int Samples,
    double LearnedExactMatch,
    double ForcedExactMatch,
    double LearnedLoss,
    double ForcedLoss,
    IReadOnlyDictionary<string, (double Learned, double Forced)> ExactMatchPerTask)
{
    /// <summary>The diagnosis as JSON (NaN written as null).</summary>
    public JsonObject ToJson()
    {
        static JsonNode? Number(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 6)) : null;
        return new JsonObject
        {
            ["tasks"] = new JsonArray(Tasks.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
            ["samples"] = Samples,
            ["exact_match"] = new JsonObject { ["learned"] = Number(LearnedExactMatch), ["forced"] = Number(ForcedExactMatch) },
            ["response_loss"] = new JsonObject { ["learned"] = Number(LearnedLoss), ["forced"] = Number(ForcedLoss) },
            ["exact_match_per_task"] = new JsonObject(ExactMatchPerTask.Select(kv => KeyValuePair.Create(kv.Key,
                (JsonNode?)new JsonObject { ["learned"] = Number(kv.Value.Learned), ["forced"] = Number(kv.Value.Forced) }))),
            ["layers"] = new JsonArray(Layers.Select(l => (JsonNode?)new JsonObject
            {
                ["router"] = l.Router,
                ["prompt_consistency"] = Number(l.PromptConsistency),
                ["response_consistency"] = Number(l.ResponseConsistency),
                ["probe_last_prompt"] = Number(l.ProbeLastPrompt),
                ["probe_response"] = Number(l.ProbeResponse),
            }).ToArray()),
        };
    }
}
