using System.Globalization;
using System.Text;
using LoraMixer.IO;
using LoraMixer.Reporting;

namespace LoraMixer.Experiments;

/// <summary>
/// Writes an experiment run's report folder: <c>README.md</c> and a static <c>index.html</c> with the main
/// table (the paper's Table 2 layout: methods × tasks + Avg, <c>mean ± sd</c> over seeds, best in bold),
/// cost per method and the RSL ablation, plus PNG plots of scores, routing and training. Plots whose data
/// the run lacks are left out.
/// </summary>
public static class ExperimentReport
{
    /// <summary>The method whose routing is plotted, in order of preference.</summary>
    public static readonly IReadOnlyList<string> ReferenceMethods = ["mixer-joint", "mixer-pnp"];

    /// <summary>The full-RSL row that anchors the ablation table (the variants are plug-and-play), in order of preference.</summary>
    public static readonly IReadOnlyList<string> AblationReferences = ["mixer-pnp", "mixer-joint"];

    /// <summary>What the interval table shows.</summary>
    public const string IntervalCaption = "Mean over seeds with its 95% interval from a two-level bootstrap (seeds, then items within each seed, " +
        "2,000 replicates), so it covers both training randomness and the finite test sample. In % (MCC × 100 for MCC tasks).";

    /// <summary>What the paired table shows.</summary>
    public const string PairedCaption = "Difference from multi-task LoRA on the same items of the same seeds (percentage points; MCC × 100), " +
        "95% paired-bootstrap interval and two-sided bootstrap p.";

    /// <summary>Loads <paramref name="runDir"/> and writes its report into <paramref name="outDir"/>.</summary>
    /// <returns>The files written: README.md, index.html, then the plots.</returns>
    public static IReadOnlyList<string> Write(string runDir, string outDir) => Write(ExperimentResults.Load(runDir), outDir);

    /// <summary>Writes the report of loaded results into <paramref name="outDir"/>.</summary>
    /// <returns>The files written: README.md, index.html, then the plots.</returns>
    public static IReadOnlyList<string> Write(ExperimentResults results, string outDir)
    {
        ArgumentNullException.ThrowIfNull(results);
        Directory.CreateDirectory(outDir);
        var figures = Plots(results, outDir);
        var content = Content(results, figures);
        string readme = Path.Combine(outDir, "README.md"), index = Path.Combine(outDir, "index.html");
        AtomicFile.Write(readme, s => s.Write(Encoding.UTF8.GetBytes(Markdown(content))));
        AtomicFile.Write(index, s => s.Write(Encoding.UTF8.GetBytes(ExperimentReportHtml.Render(content))));
        return [readme, index, .. figures.Select(f => Path.Combine(outDir, f.File))];
    }

    /// <summary>The rows of the main table: every method not in the ablation group.</summary>
    public static IReadOnlyList<MethodSummary> MainMethods(ExperimentResults results) =>
        results.Methods.Where(m => m.Group != MethodResult.AblationGroup).ToArray();

    /// <summary>The rows of the ablation table: the reference mixer (when present) then the ablation variants; empty without variants.</summary>
    public static IReadOnlyList<MethodSummary> AblationMethods(ExperimentResults results)
    {
        var variants = results.Methods.Where(m => m.Group == MethodResult.AblationGroup).ToArray();
        if (variants.Length == 0) return [];
        var reference = AblationReferences.Select(results.Find).FirstOrDefault(m => m is not null);
        return reference is null ? variants : [reference, .. variants];
    }

    private static ReportContent Content(ExperimentResults results, IReadOnlyList<(string File, string Caption)> figures)
    {
        var setup = new List<(string, string)>();
        if (results.Manifest is { } manifest)
        {
            if (manifest.Created is { } created) setup.Add(("created", created));
            setup.AddRange(manifest.Versions.Select(kv => (kv.Key, kv.Value)));
            if (manifest.BaseModelPath is { } path) setup.Add(("base model", path));
            if (manifest.BaseModelSha256 is { } sha) setup.Add(("base model sha256", sha));
        }
        string seeds = string.Join(", ", results.Seeds);
        string summary = $"{results.Methods.Count} methods × {results.Tasks.Count} tasks over {results.Seeds.Count} seed{(results.Seeds.Count == 1 ? "" : "s")} ({seeds}), " +
                         $"{results.Results.Count} result files in {results.RunDir}.";
        string metrics = string.Join(", ", results.Tasks.Select(t => $"{t} {results.Metric(t)}"));
        string mainCaption = $"Scores in % as mean ± sample standard deviation over seeds; {ScoreTable.AverageColumn} is the mean over the accuracy tasks " +
                             $"of each seed, then over the seeds that scored every one; tasks scored by Matthews correlation (MCC × 100, 0 = chance) are shown apart, " +
                             $"after the {ScoreTable.AverageColumn}, and are not in it; best per column in bold. Metrics: {metrics}.";
        var cost = results.Methods.Select(m => (IReadOnlyList<string>)
        [
            m.Label, Format(m.TrainableParams, "N0"), Format(m.TokensPerSecond, "F1"), Format(m.Seconds, "F0"), $"{m.Seeds.Count} of {results.Seeds.Count}",
        ]).ToArray();
        var ablationRows = AblationMethods(results);
        var reference = ablationRows.FirstOrDefault(m => m.Group != MethodResult.AblationGroup);
        var statsHeader = new[] { "Method" }.Concat(results.Tasks.Select(t => results.IsMcc(t) ? ScoreTable.MccColumn(t) : t)).ToArray();
        var intervalRows = results.Methods.Any(m => m.Scores.Values.Any(s => s.Ci95 is not null))
            ? results.Methods.Select(m => (IReadOnlyList<string>)[m.Label, .. results.Tasks.Select(t => m.Scores.GetValueOrDefault(t) is { } s
                ? s.Ci95 is { } ci ? $"{F(s.Mean)} [{F(ci.Lower)}, {F(ci.Upper)}]" : F(s.Mean) : MarkdownTable.Missing)]).ToArray()
            : [];
        var pairedRows = results.Methods.Where(m => m.Comparisons.Count > 0)
            .Select(m => (IReadOnlyList<string>)[m.Label, .. results.Tasks.Select(t => m.Comparisons.GetValueOrDefault(t) is { } c
                ? $"{(c.Delta >= 0 ? "+" : "")}{F(c.Delta)} [{F(c.Lower)}, {F(c.Upper)}], p {c.P.ToString("F3", CultureInfo.InvariantCulture)}" : MarkdownTable.Missing)]).ToArray();
        return new ReportContent(
            $"Experiment report: {results.Name}", summary, setup,
            ScoreTable.Of(results, MainMethods(results)), mainCaption,
            ["Method", "Trainable params", "Inference tokens/s", "Seconds (train + eval)", "Seeds"], cost,
            ablationRows.Count > 0 ? ScoreTable.Of(results, ablationRows) : null,
            ablationRows.Count > 0 ? "Routing-specialisation loss (RSL) ablation, same columns" + (reference is null ? "." : $"; {reference.Label} for reference.") : null,
            figures)
        {
            StatsHeader = statsHeader, IntervalRows = intervalRows, PairedRows = pairedRows,
        };
    }

    private static string F(double value) => value.ToString("F1", CultureInfo.InvariantCulture);

    private static string Markdown(ReportContent content)
    {
        var md = new StringBuilder();
        md.Append("# ").Append(content.Title).Append("\n\n").Append(content.Summary).Append("\n\n");
        if (content.Setup.Count > 0)
        {
            md.Append("## Setup\n\n");
            foreach (var (key, value) in content.Setup) md.Append("- ").Append(key).Append(": `").Append(value).Append("`\n");
            md.Append('\n');
        }
        md.Append("## Results\n\n").Append(content.Main.ToMarkdown(content.MainCaption)).Append('\n');
        md.Append(MarkdownTable.Simple(content.CostHeader, content.CostRows)).Append('\n');
        if (content.IntervalRows.Count > 0)
        {
            md.Append("## Statistics\n\n").Append(IntervalCaption).Append("\n\n").Append(MarkdownTable.Simple(content.StatsHeader, content.IntervalRows)).Append('\n');
            if (content.PairedRows.Count > 0)
                md.Append(PairedCaption).Append("\n\n").Append(MarkdownTable.Simple(content.StatsHeader, content.PairedRows)).Append('\n');
        }
        if (content.Ablation is not null)
            md.Append("## RSL ablation\n\n").Append(content.Ablation.ToMarkdown(content.AblationCaption)).Append('\n');
        if (content.Figures.Count > 0)
        {
            md.Append("## Figures\n\n");
            foreach (var (file, caption) in content.Figures) md.Append($"![{caption}]({file})\n\n");
        }
        return md.ToString();
    }

    private static List<(string File, string Caption)> Plots(ExperimentResults results, string dir)
    {
        var figures = new List<(string File, string Caption)>();
        void Add(string file, string caption, Action<string> draw)
        {
            draw(Path.Combine(dir, file));
            figures.Add((file, caption));
        }

        var main = ScoreTable.Of(results, MainMethods(results));
        if (HasData(main.Means))
        {
            Add("scores.png", "Mean score per task and method (error bars: sd over seeds)", path => ReportPlots.GroupedBars(path,
                "Score per task (%)", main.Columns, main.Rows.Select((row, r) => (row, RowValues(main.Means, r))).ToArray(), "score (%)",
                main.Rows.Select((_, r) => (double[]?)RowValues(main.Sds, r)).ToArray()));
        }

        var ablationRows = AblationMethods(results);
        if (ablationRows.Any(m => m.Average is not null))
        {
            Add("rsl-ablation.png", "RSL ablation: Avg score per variant (error bars: sd over seeds)", path => ReportPlots.GroupedBars(path,
                $"RSL ablation: {ScoreTable.AverageColumn} score (%)", ablationRows.Select(m => m.Label).ToArray(),
                [(ScoreTable.AverageColumn, ablationRows.Select(m => m.Average?.Mean ?? double.NaN).ToArray())], "score (%)",
                [ablationRows.Select(m => m.Average?.Sd ?? double.NaN).ToArray()]));
        }

        // Results are ordered by method then seed, so the first routed result of a method is its lowest seed.
        var routed = results.Results.Where(r => r.Routing is { Routers.Count: > 0, Experts.Count: > 0 }).GroupBy(r => r.Method).Select(g => g.First()).ToArray();
        if ((routed.FirstOrDefault(r => r.Method == ReferenceMethods[0]) ?? routed.FirstOrDefault()) is { Routing: { } routing } chosen)
        {
            var layers = routing.Routers.Select((_, i) => $"layer {i}").ToArray();
            if (routing.Tasks.Count > 0)
            {
                for (int l = 0; l < routing.Routers.Count; l++)
                {
                    var router = routing.Routers[l];
                    Add($"routing-heatmap-layer{l}.png", $"{chosen.Label} (seed {chosen.Seed}), layer {l}: share of each task's tokens whose top-1 expert is each expert",
                        path => ReportPlots.Heatmap(path, $"{chosen.Label}: top-1 expert share per task, {router.Name}",
                            router.TaskExpert, routing.Tasks, routing.Experts, "share of tokens"));
                }
            }
            Add("expert-load.png", $"{chosen.Label} (seed {chosen.Seed}): expert load per layer", path => ReportPlots.GroupedBars(path,
                $"{chosen.Label}: expert load per layer (share of top-1 choices)", layers,
                routing.Experts.Select((e, ei) => (e, routing.Routers.Select(r => r.Load[ei]).ToArray())).ToArray(), "share of tokens"));
        }
        if (routed.Any(r => r.Routing!.Routers.Any(x => double.IsFinite(x.MeanEntropy))))
        {
            int depth = routed.Max(r => r.Routing!.Routers.Count);
            Add("routing-entropy.png", "Mean routing entropy per layer (lowest seed of each method)", path => ReportPlots.GroupedBars(path,
                "Mean routing entropy per layer (nats)", Enumerable.Range(0, depth).Select(i => $"layer {i}").ToArray(),
                routed.Select(r => (r.Label, Enumerable.Range(0, depth).Select(i => i < r.Routing!.Routers.Count ? r.Routing.Routers[i].MeanEntropy : double.NaN).ToArray())).ToArray(),
                "entropy (nats)"));
        }

        var logged = results.Results.Where(r => r.TrainLogs.Count > 0).ToArray();
        if (logged.Length > 0)
        {
            int seed = logged.Min(r => r.Seed);
            var curves = logged.Where(r => r.Seed == seed)
                .SelectMany(r => r.TrainLogs.Select(kv => ($"{r.Label}: {kv.Key}", LossCurves.Read(Path.Combine(results.RunDir, kv.Value))))).ToArray();
            var train = curves.Where(c => c.Item2.Loss.Any(double.IsFinite))
                .Select(c => (c.Item1, c.Item2.Steps, LossCurves.Smooth(c.Item2.Loss, Math.Max(1, c.Item2.Loss.Length / 50)))).ToArray();
            if (train.Length > 0)
                Add("training-curves.png", $"Training loss of every stage (seed {seed}; moving average over 2% of the steps)",
                    path => ReportPlots.Lines(path, "Training loss", train, "step", "loss"));
            var eval = curves.Where(c => c.Item2.EvalLoss.Any(double.IsFinite)).Select(c => (c.Item1, c.Item2.EvalSteps, c.Item2.EvalLoss)).ToArray();
            if (eval.Length > 0)
                Add("eval-curves.png", $"Validation loss of every stage (seed {seed})", path => ReportPlots.Lines(path, "Validation loss", eval, "step", "eval loss"));
        }
        return figures;
    }

    private static bool HasData(double?[,] values) => values.Cast<double?>().Any(v => v is { } x && double.IsFinite(x));

    private static double[] RowValues(double?[,] values, int row) =>
        Enumerable.Range(0, values.GetLength(1)).Select(c => values[row, c] ?? double.NaN).ToArray();

    private static string Format(double? value, string format) =>
        value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : MarkdownTable.Missing;
}
