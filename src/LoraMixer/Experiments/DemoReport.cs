using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.IO;
using LoraMixer.Reporting;

namespace LoraMixer.Experiments;

/// <summary>
/// Writes the demo's report folder: <c>README.md</c> (the comparison table and what it shows),
/// <c>results.json</c>, and PNG plots (accuracy per task, routing heatmaps task × expert per layer,
/// expert load per layer, routing entropy, training loss curves).
/// </summary>
public static class DemoReport
{
    /// <summary>Writes every report file into <see cref="DemoResult.OutputDir"/>.</summary>
    public static void Write(DemoResult result)
    {
        string dir = result.OutputDir;
        Directory.CreateDirectory(dir);
        var figures = new List<(string File, string Caption)>();
        var columns = result.Tasks.Append("average").ToArray();

        ReportPlots.GroupedBars(Path.Combine(dir, "accuracy.png"), "Held-out accuracy per task (%)", columns,
            result.Methods.Select(m => (m.Method, columns.Select(c => c == "average" ? m.Average : m.Accuracy[c]).ToArray())).ToArray(),
            "accuracy (%)");
        figures.Add(("accuracy.png", "Held-out accuracy per task and method"));

        foreach (var (method, stats) in result.Routing)
        {
            string slug = Slug(method);
            for (int r = 0; r < stats.RouterNames.Count; r++)
            {
                string file = $"routing-{slug}-layer{r}.png";
                ReportPlots.Heatmap(Path.Combine(dir, file), $"{method}: top-1 expert share per task, {stats.RouterNames[r]}",
                    stats.TaskExpert(r), stats.TaskNames, stats.ExpertNames, "share of tokens");
                figures.Add((file, $"{method}, layer {r}: rows are the tasks of the test items, columns the experts; each cell the share of the task's tokens whose top-1 expert it is"));
            }
            string load = $"load-{slug}.png";
            var layers = stats.RouterNames.Select((_, i) => $"layer {i}").ToArray();
            ReportPlots.GroupedBars(Path.Combine(dir, load), $"{method}: expert load per layer (share of top-1 choices)", layers,
                stats.ExpertNames.Select((e, ei) => (e, Enumerable.Range(0, layers.Length).Select(r => stats.Load(r)[ei]).ToArray())).ToArray(),
                "share of tokens");
            figures.Add((load, $"{method}: expert load per layer"));
            string entropy = $"entropy-{slug}.png";
            ReportPlots.GroupedBars(Path.Combine(dir, entropy), $"{method}: mean routing entropy per layer (nats; ln E = {Math.Log(stats.ExpertNames.Count):F2} is uniform)",
                layers, new[] { ("entropy", Enumerable.Range(0, layers.Length).Select(stats.MeanEntropy).ToArray()) }, "entropy (nats)");
            figures.Add((entropy, $"{method}: mean routing entropy per layer"));
        }

        var curves = result.TrainingLogs.Select(kv => (kv.Key, Curve(kv.Value))).Where(c => c.Item2.X.Length > 0)
            .Select(c => (c.Key, c.Item2.X, c.Item2.Y)).ToArray();
        ReportPlots.Lines(Path.Combine(dir, "loss-curves.png"), "Training loss (cross-entropy on answer tokens)", curves, "step", "loss");
        figures.Add(("loss-curves.png", "Training loss of every stage"));

        AtomicFile.Write(Path.Combine(dir, "results.json"), s => JsonSerializer.Serialize(s, ToJson(result), new JsonSerializerOptions { WriteIndented = true }));
        string markdown = Markdown(result, figures);
        AtomicFile.Write(Path.Combine(dir, "README.md"), s => s.Write(Encoding.UTF8.GetBytes(markdown)));
    }

    /// <summary>The comparison table in Markdown: methods as rows, tasks and their average as columns, best in bold.</summary>
    public static string Table(DemoResult result)
    {
        var columns = result.Tasks.Append("average").ToArray();
        var means = new double?[result.Methods.Count, columns.Length];
        for (int r = 0; r < result.Methods.Count; r++)
            for (int c = 0; c < columns.Length; c++)
                means[r, c] = columns[c] == "average" ? result.Methods[r].Average : result.Methods[r].Accuracy[columns[c]];
        return MarkdownTable.Comparison(result.Methods.Select(m => m.Method).ToArray(), columns, means, null, decimals: 1);
    }

    private static string Markdown(DemoResult result, IReadOnlyList<(string File, string Caption)> figures)
    {
        var md = new StringBuilder();
        md.AppendLine("# LoRA-Mixer demo report").AppendLine();
        md.AppendLine($"Built-in suite of {result.Tasks.Count} tasks, embedded default base model ({result.Architecture}), run in {result.Elapsed.TotalSeconds:F0} s. " +
                      "Accuracy (%) of greedy answers on held-out items (exact match); best per column in bold.").AppendLine();
        md.Append(Table(result)).AppendLine();
        md.AppendLine(MarkdownTable.Simple(new[] { "method", "trainable parameters", "generation tokens/s" },
            result.Methods.Select(m => (IReadOnlyList<string>)new[]
            {
                m.Method, m.TrainableParameters.ToString("N0", CultureInfo.InvariantCulture), m.TokensPerSecond.ToString("F0", CultureInfo.InvariantCulture),
            })));
        md.AppendLine("How to read it:").AppendLine();
        md.AppendLine("- *single-task LoRA (oracle)* is each task's own stage-1 expert, told which task it faces: the upper bound a router can reach.");
        md.AppendLine("- *multi-task LoRA* is one adapter trained on the union with rank = experts × expert rank (the same parameter budget).");
        md.AppendLine("- *uniform merge* averages the experts' updates (every expert weighted 1/E), with no routing.");
        md.AppendLine("- *LoRAHub* merges the experts into one LoRA (A = Σ w A_i, B = Σ w B_i) per task, its weights searched gradient-free on that task's 5 examples (loss + 0.05·mean|w|, from 0, within ±1.5); *MoLE* learns, in every adapted matrix, a gate over the frozen experts' outputs with its gating-balance loss and keeps all experts at inference.");
        md.AppendLine("- Budgets: every trained method gets stage-1 + stage-2 optimizer steps of the same batch (the multi-task LoRA all in one stage); the oracle, the merge and LoRAHub use stage 1 only.");
        md.AppendLine("- *LoRA-Mixer (plug-and-play)* trains only the routers over the frozen stage-1 experts; *LoRA-Mixer (joint)* also fine-tunes the experts, held near their stage-1 values by the preservation loss. Both use the default router (docs/method.md §3–§5: the token and the causal mean of its sequence, standardised, supervised towards the task's expert).");
        md.AppendLine("- *paper's router* is plug-and-play with `--preset paper`: the token's hidden state alone, no standardisation, no supervision, RSL only.");
        md.AppendLine("- The held-out items and the training data are in `data/`, so any row can be rerun with `lora train`, `mixer train` and measured with `mixer diagnose`.");
        md.AppendLine("- The base model was pretrained on generic text that never answers a task, so it scores near zero except by chance.").AppendLine();
        foreach (var (method, stats) in result.Routing)
            md.AppendLine($"- {method}: tokens routed (top-1) to their own task's expert: {100 * stats.TaskAlignment():F1}% (chance {100.0 / stats.ExpertNames.Count:F0}%).");
        md.AppendLine();
        md.AppendLine("Numbers come from one seed at toy scale: they show the mechanics (experts specialise, routers read the input), not what the method achieves on real models; see docs/results.md.").AppendLine();
        md.AppendLine("## Figures").AppendLine();
        foreach (var (file, caption) in figures) md.AppendLine($"![{caption}]({file})").AppendLine();
        return md.ToString();
    }

    private static JsonObject ToJson(DemoResult result) => new()
    {
        ["architecture"] = result.Architecture,
        ["tasks"] = new JsonArray(result.Tasks.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
        ["elapsed_s"] = Math.Round(result.Elapsed.TotalSeconds, 1),
        ["methods"] = new JsonArray(result.Methods.Select(m => (JsonNode)new JsonObject
        {
            ["method"] = m.Method,
            ["accuracy"] = new JsonObject(m.Accuracy.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)Math.Round(kv.Value, 2)))),
            ["average"] = Math.Round(m.Average, 2),
            ["trainable_parameters"] = m.TrainableParameters,
            ["tokens_per_s"] = Math.Round(m.TokensPerSecond, 1),
        }).ToArray()),
        ["routing"] = new JsonObject(result.Routing.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value.ToJson()))),
    };

    private static (double[] X, double[] Y) Curve(string trainLog)
    {
        var curves = LossCurves.Read(trainLog);
        return (curves.Steps, curves.Loss);
    }

    private static string Slug(string method) =>
        new string(method.ToLowerInvariant().Select(c => char.IsLetterOrDigit(c) ? c : '-').ToArray()).Trim('-').Replace("--", "-");
}
