using System.Text.Json.Nodes;

namespace LoraMixer.Experiments;

/// <summary>
/// What a method spent and holds, recorded in its result: optimizer steps over all its training stages,
/// training samples those steps saw (steps × batch), values it trained (over all its stages) and values the
/// model holds at evaluation (base model included).
/// </summary>
/// <param name="OptimizerSteps">Optimizer steps of every stage the method builds on (stage 1 included).</param>
/// <param name="Samples">Training samples seen: steps × batch size.</param>
/// <param name="TrainedParams">Values trained over all its stages (experts, routers, gates, merge weights).</param>
/// <param name="TotalParams">Values the evaluated model holds, base model included.</param>
/// <param name="SearchEvaluations">Loss evaluations of a gradient-free search (LoRAHub), else 0.</param>
public sealed record MethodBudget(long OptimizerSteps, long Samples, long TrainedParams, long TotalParams, long SearchEvaluations = 0)
{
    /// <summary>The budget as the result file's <c>budget</c> object.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["optimizer_steps"] = OptimizerSteps, ["samples"] = Samples, ["trained_params"] = TrainedParams, ["total_params"] = TotalParams,
        };
        if (SearchEvaluations > 0) json["search_evaluations"] = SearchEvaluations;
        return json;
    }
}
