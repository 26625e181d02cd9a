using System.Text.Json.Nodes;
using LoraMixer.Errors;

namespace LoraMixer.Experiments;

/// <summary>One finished (seed, method) of a run: <c>seed-&lt;s&gt;/results/&lt;method&gt;.json</c>.</summary>
/// <param name="File">The result file.</param>
/// <param name="Method">The method id, as in the recipe.</param>
/// <param name="Label">The display name for tables.</param>
/// <param name="Group"><see cref="MainGroup"/> or <see cref="AblationGroup"/>.</param>
/// <param name="Seed">The seed.</param>
/// <param name="TrainableParams">Trainable parameters, when recorded.</param>
/// <param name="TokensPerSecond">Inference throughput during evaluation, when recorded.</param>
/// <param name="Seconds">Wall time of training and evaluation, when recorded.</param>
/// <param name="Scores">Task → score; a task may be missing.</param>
/// <param name="Routing">Routing statistics, for methods with routers.</param>
/// <param name="TrainLogs">Stage label → <c>train_log.jsonl</c> path relative to the run folder.</param>
public sealed record MethodResult(
    string File, string Method, string Label, string Group, int Seed, long? TrainableParams, double? TokensPerSecond, double? Seconds,
    IReadOnlyDictionary<string, TaskScore> Scores, RoutingSummary? Routing, IReadOnlyDictionary<string, string> TrainLogs)
{
    /// <summary>The group of the methods compared in the main table.</summary>
    public const string MainGroup = "main";

    /// <summary>The group of the routing-loss (RSL) ablation variants.</summary>
    public const string AblationGroup = "ablation";

    /// <summary>
    /// Reads a result file; <paramref name="folderSeed"/> (from <c>seed-&lt;s&gt;</c>) is used when the file has no seed.
    /// </summary>
    /// <exception cref="DataFormatException">The file is not valid JSON or a field is missing or of the wrong type; the message names the file.</exception>
    public static MethodResult Load(string path, int folderSeed)
    {
        var json = RunJson.ReadObject(path, "result file");
        try
        {
            string method = RunJson.RequiredString(json, "method");
            var scores = new Dictionary<string, TaskScore>();
            foreach (var (task, node) in RunJson.Object(json, "scores") ?? new JsonObject())
            {
                if (node is not JsonObject s) throw new FormatException($"'scores.{task}' must be an object");
                double value = RunJson.Number(s, "value") ?? throw new FormatException($"'scores.{task}.value' is missing");
                var ci = s["ci95"] is JsonArray { Count: 2 } c ? (RunJson.Number(c[0], "ci95"), RunJson.Number(c[1], "ci95")) : ((double, double)?)null;
                double? n = RunJson.Number(s, "n");
                scores[task] = new TaskScore(RunJson.String(s, "metric") ?? "score", value, n is { } k && double.IsFinite(k) ? (int)k : null, ci)
                {
                    Items = RunJson.Object(s, "items") is { } items ? ReadItems(items, task) : [],
                };
            }
            var logs = new Dictionary<string, string>();
            foreach (var (stage, node) in RunJson.Object(json, "train_logs") ?? new JsonObject())
                logs[stage] = node is JsonValue v && v.TryGetValue(out string? p) ? p : throw new FormatException($"'train_logs.{stage}' must be a path");
            double? seed = RunJson.Number(json, "seed");
            double? parameters = RunJson.Number(json, "trainable_params");
            return new MethodResult(path, method, RunJson.String(json, "label") ?? method, RunJson.String(json, "group") ?? MainGroup,
                seed is { } x && double.IsFinite(x) ? (int)x : folderSeed,
                parameters is { } q && double.IsFinite(q) ? (long)q : null,
                RunJson.Number(json, "tokens_per_second"), RunJson.Number(json, "seconds"), scores,
                RunJson.Object(json, "routing") is { } routing ? RoutingSummary.FromJson(routing) : null, logs);
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw new DataFormatException($"malformed result file {path}: {e.Message}", e);
        }
    }

    // "items": {"index": [...], "score": [...], "predicted": [...], "gold": [...]} (the last two for classification).
    private static Evaluation.ItemOutcome[] ReadItems(JsonObject items, string task)
    {
        var index = RunJson.Numbers(items["index"], $"scores.{task}.items.index");
        var score = RunJson.Numbers(items["score"], $"scores.{task}.items.score");
        var predicted = items["predicted"] is null ? null : RunJson.Numbers(items["predicted"], $"scores.{task}.items.predicted");
        var gold = items["gold"] is null ? null : RunJson.Numbers(items["gold"], $"scores.{task}.items.gold");
        if (score.Length != index.Length || predicted?.Length is { } p && p != index.Length || gold?.Length is { } g && g != index.Length)
            throw new FormatException($"'scores.{task}.items' arrays differ in length");
        return Enumerable.Range(0, index.Length).Select(i => new Evaluation.ItemOutcome((int)index[i], score[i],
            predicted is null ? null : (int)predicted[i], gold is null ? null : (int)gold[i])).ToArray();
    }
}
