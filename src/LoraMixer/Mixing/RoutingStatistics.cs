using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// Routing statistics per router (layer) over real tokens: expert load (share of top-1 choices), mean
/// token entropy, and for labelled data the task × expert matrix of top-1 shares (docs/method.md §5).
/// </summary>
public sealed class RoutingStatistics
{
    private readonly double[][,] _taskExpert; // [router][task, expert] top-1 counts
    private readonly double[] _entropySum;
    private readonly double[] _tokens;

    /// <summary>Creates empty statistics for the given routers, experts and tasks.</summary>
    public RoutingStatistics(IReadOnlyList<string> routerNames, IReadOnlyList<string> expertNames, IReadOnlyList<string> taskNames)
    {
        RouterNames = routerNames;
        ExpertNames = expertNames;
        TaskNames = taskNames.Count > 0 ? taskNames : new[] { "all" };
        _taskExpert = routerNames.Select(_ => new double[TaskNames.Count, expertNames.Count]).ToArray();
        _entropySum = new double[routerNames.Count];
        _tokens = new double[routerNames.Count];
    }

    /// <summary>Router names (e.g. <c>model.layers.0.router</c>).</summary>
    public IReadOnlyList<string> RouterNames { get; }
    /// <summary>Expert names.</summary>
    public IReadOnlyList<string> ExpertNames { get; }
    /// <summary>Task names (rows of the task × expert matrix); "all" when the data has no tasks.</summary>
    public IReadOnlyList<string> TaskNames { get; }

    /// <summary>
    /// Adds one forward pass: <paramref name="probabilities"/> holds one [B, T, E] tensor per router in
    /// router order, <paramref name="tokenMask"/> [B, T] marks real tokens, <paramref name="taskIds"/> [B]
    /// the task of each sample (−1 or null: counted under task 0 when there are no tasks).
    /// </summary>
    public void Add(IReadOnlyList<Tensor> probabilities, Tensor tokenMask, Tensor? taskIds)
    {
        if (probabilities.Count != RouterNames.Count)
            throw new ArgumentException($"{probabilities.Count} routing tensors for {RouterNames.Count} routers");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var mask = tokenMask.cpu().to(ScalarType.Float32);
        long batch = mask.shape[0], time = mask.shape[1];
        var maskData = mask.data<float>().ToArray();
        long[] tasks = taskIds is null ? new long[batch] : taskIds.cpu().data<long>().ToArray();
        for (int r = 0; r < probabilities.Count; r++)
        {
            var p = probabilities[r].detach().cpu();
            if (p.shape[0] != batch || p.shape[1] != time) throw new ArgumentException("routing and mask shapes differ");
            var top1 = p.argmax(-1).data<long>().ToArray();
            var entropy = (-(p * p.clamp_min(1e-12).log()).sum(-1)).data<float>().ToArray();
            for (long b = 0; b < batch; b++)
            {
                int task = tasks[b] >= 0 && tasks[b] < TaskNames.Count ? (int)tasks[b] : 0;
                for (long t = 0; t < time; t++)
                {
                    long i = b * time + t;
                    if (maskData[i] == 0) continue;
                    _taskExpert[r][task, top1[i]] += 1;
                    _entropySum[r] += entropy[i];
                    _tokens[r] += 1;
                }
            }
        }
    }

    /// <summary>Share of top-1 choices per expert for router <paramref name="router"/>.</summary>
    public double[] Load(int router)
    {
        var m = _taskExpert[router];
        var load = new double[ExpertNames.Count];
        for (int t = 0; t < TaskNames.Count; t++)
            for (int e = 0; e < load.Length; e++) load[e] += m[t, e];
        double total = load.Sum();
        return load.Select(v => total > 0 ? v / total : double.NaN).ToArray();
    }

    /// <summary>Mean token routing entropy of router <paramref name="router"/> (nats).</summary>
    public double MeanEntropy(int router) => _tokens[router] > 0 ? _entropySum[router] / _tokens[router] : double.NaN;

    /// <summary>Row-normalised task × expert top-1 shares of router <paramref name="router"/>.</summary>
    public double[,] TaskExpert(int router)
    {
        var m = _taskExpert[router];
        var shares = new double[TaskNames.Count, ExpertNames.Count];
        for (int t = 0; t < TaskNames.Count; t++)
        {
            double row = 0;
            for (int e = 0; e < ExpertNames.Count; e++) row += m[t, e];
            for (int e = 0; e < ExpertNames.Count; e++) shares[t, e] = row > 0 ? m[t, e] / row : double.NaN;
        }
        return shares;
    }

    /// <summary>
    /// Fraction of tokens whose top-1 expert is their own task's expert, when experts are named after tasks
    /// (NaN otherwise), averaged over routers.
    /// </summary>
    public double TaskAlignment()
    {
        double hit = 0, total = 0;
        for (int r = 0; r < RouterNames.Count; r++)
            for (int t = 0; t < TaskNames.Count; t++)
            {
                int e = IndexOf(ExpertNames, TaskNames[t]);
                for (int j = 0; j < ExpertNames.Count; j++) total += _taskExpert[r][t, j];
                if (e >= 0) hit += _taskExpert[r][t, e];
            }
        return total > 0 && TaskNames.Any(t => IndexOf(ExpertNames, t) >= 0) ? hit / total : double.NaN;
    }

    /// <summary>The statistics as JSON: per router the load, entropy and task × expert matrix.</summary>
    public JsonObject ToJson()
    {
        var routers = new JsonArray();
        for (int r = 0; r < RouterNames.Count; r++)
        {
            var matrix = TaskExpert(r);
            var rows = new JsonObject();
            for (int t = 0; t < TaskNames.Count; t++)
                rows[TaskNames[t]] = new JsonArray(Enumerable.Range(0, ExpertNames.Count).Select(e => (JsonNode)Round(matrix[t, e])).ToArray());
            routers.Add(new JsonObject
            {
                ["router"] = RouterNames[r],
                ["tokens"] = _tokens[r],
                ["load"] = new JsonArray(Load(r).Select(v => (JsonNode)Round(v)).ToArray()),
                ["mean_entropy"] = Round(MeanEntropy(r)),
                ["task_expert"] = rows,
                ["counts"] = new JsonObject(Enumerable.Range(0, TaskNames.Count).Select(t => KeyValuePair.Create(TaskNames[t],
                    (JsonNode?)new JsonArray(Enumerable.Range(0, ExpertNames.Count).Select(e => (JsonNode)JsonValue.Create(_taskExpert[r][t, e])).ToArray())))),
                ["entropy_sum"] = _entropySum[r],
            });
        }
        return new JsonObject
        {
            ["experts"] = new JsonArray(ExpertNames.Select(n => (JsonNode)JsonValue.Create(n)!).ToArray()),
            ["tasks"] = new JsonArray(TaskNames.Select(n => (JsonNode)JsonValue.Create(n)!).ToArray()),
            ["routers"] = routers,
        };
    }

    /// <summary>
    /// Statistics written by <see cref="ToJson"/>, restored exactly from its top-1 counts and entropy sums.
    /// </summary>
    /// <exception cref="FormatException">The JSON lacks a field or its counts do not match its experts and tasks.</exception>
    public static RoutingStatistics FromJson(JsonObject json)
    {
        static string[] Names(JsonNode? node, string field) =>
            (node as JsonArray ?? throw new FormatException($"routing statistics: '{field}' is missing")).Select(n => n!.GetValue<string>()).ToArray();
        var experts = Names(json["experts"], "experts");
        var tasks = Names(json["tasks"], "tasks");
        var routers = json["routers"] as JsonArray ?? throw new FormatException("routing statistics: 'routers' is missing");
        var stats = new RoutingStatistics(routers.Select(r => r!["router"]!.GetValue<string>()).ToArray(), experts, tasks);
        for (int r = 0; r < routers.Count; r++)
        {
            var router = routers[r]!.AsObject();
            var counts = router["counts"] as JsonObject ?? throw new FormatException("routing statistics: 'counts' is missing (written by an older LoraMixer)");
            for (int t = 0; t < tasks.Length; t++)
            {
                var row = counts[tasks[t]] as JsonArray;
                if (row is null || row.Count != experts.Length) throw new FormatException($"routing statistics: counts of task '{tasks[t]}' do not match the experts");
                for (int e = 0; e < experts.Length; e++) stats._taskExpert[r][t, e] = row[e]!.GetValue<double>();
            }
            stats._entropySum[r] = router["entropy_sum"]?.GetValue<double>() ?? 0;
            stats._tokens[r] = router["tokens"]?.GetValue<double>() ?? 0;
        }
        return stats;
    }

    private static JsonNode Round(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 4))! : JsonValue.Create("NaN")!;

    private static int IndexOf(IReadOnlyList<string> list, string item)
    {
        for (int i = 0; i < list.Count; i++) if (list[i] == item) return i;
        return -1;
    }
}
