using System.Text.Json.Nodes;

namespace LoraMixer.Experiments;

/// <summary>The routing statistics of one result file, as written by <c>RoutingStatistics.ToJson()</c>.</summary>
/// <param name="Experts">Expert names.</param>
/// <param name="Tasks">Task names (rows of each router's task × expert matrix).</param>
/// <param name="Routers">One entry per router, in layer order.</param>
public sealed record RoutingSummary(IReadOnlyList<string> Experts, IReadOnlyList<string> Tasks, IReadOnlyList<RouterRouting> Routers)
{
    /// <summary>Reads the JSON object; throws <see cref="FormatException"/> naming the bad key.</summary>
    public static RoutingSummary FromJson(JsonObject json)
    {
        var experts = RunJson.Strings(json, "experts");
        var tasks = RunJson.Strings(json, "tasks");
        var routers = new List<RouterRouting>();
        foreach (var node in json["routers"] as JsonArray ?? new JsonArray())
        {
            if (node is not JsonObject r) throw new FormatException("'routing.routers' must hold objects");
            var load = RunJson.Numbers(r["load"], "load");
            if (load.Length != experts.Count)
                throw new FormatException($"router '{RunJson.String(r, "router")}' has {load.Length} load values for {experts.Count} experts");
            var matrix = new double[tasks.Count, experts.Count];
            var rows = RunJson.Object(r, "task_expert");
            for (int t = 0; t < tasks.Count; t++)
            {
                var row = rows?[tasks[t]] is { } x ? RunJson.Numbers(x, "task_expert") : Enumerable.Repeat(double.NaN, experts.Count).ToArray();
                if (row.Length != experts.Count) throw new FormatException($"'task_expert.{tasks[t]}' has {row.Length} values for {experts.Count} experts");
                for (int e = 0; e < experts.Count; e++) matrix[t, e] = row[e];
            }
            routers.Add(new RouterRouting(RunJson.String(r, "router") ?? $"router {routers.Count}",
                RunJson.Number(r, "tokens") ?? double.NaN, load, RunJson.Number(r, "mean_entropy") ?? double.NaN, matrix));
        }
        return new RoutingSummary(experts, tasks, routers);
    }
}
