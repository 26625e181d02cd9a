using LoraMixer.Errors;

namespace LoraMixer.Experiments;

/// <summary>
/// The results of an experiment run folder (<c>recipe.json</c>, optional <c>manifest.json</c>,
/// <c>seed-&lt;s&gt;/results/&lt;method&gt;.json</c>), aggregated per method × task over seeds: mean ± sd, a 95%
/// interval over seeds and items (<see cref="SeedItemBootstrap"/>), the paired bootstrap against multi-task LoRA on
/// the same items, and the Avg over the accuracy tasks (MCC tasks are shown apart).
/// </summary>
public sealed class ExperimentResults
{
    /// <summary>The layout <see cref="Load"/> expects, for error messages.</summary>
    public const string ExpectedLayout = "RUN_DIR/seed-<s>/results/<method>.json";

    /// <summary>The method every other is compared with, item by item.</summary>
    public const string PairedBaseline = "multitask";

    /// <summary>The metric name of tasks that stay out of the Avg (Matthews correlation).</summary>
    public const string MccMetric = "mcc";

    private ExperimentResults(string runDir, string name, IReadOnlyList<string> tasks, IReadOnlyList<MethodResult> results,
        IReadOnlyList<MethodSummary> methods, RunManifest? manifest)
    {
        RunDir = runDir;
        Name = name;
        Tasks = tasks;
        Results = results;
        Methods = methods;
        Manifest = manifest;
        Seeds = results.Select(r => r.Seed).Distinct().Order().ToArray();
    }

    /// <summary>The run folder.</summary>
    public string RunDir { get; }

    /// <summary>The run's name (recipe, else manifest, else folder name).</summary>
    public string Name { get; }

    /// <summary>Tasks in recipe order, then tasks only the result files name.</summary>
    public IReadOnlyList<string> Tasks { get; }

    /// <summary>Seeds with at least one result, ascending.</summary>
    public IReadOnlyList<int> Seeds { get; }

    /// <summary>Every result file, in method order then seed order.</summary>
    public IReadOnlyList<MethodResult> Results { get; }

    /// <summary>Methods with results in recipe order, then methods the recipe does not list.</summary>
    public IReadOnlyList<MethodSummary> Methods { get; }

    /// <summary>The manifest, when the run has one.</summary>
    public RunManifest? Manifest { get; }

    /// <summary>The metric of each task as the first result file that scores it names it.</summary>
    public string Metric(string task) => Results.Select(r => r.Scores.GetValueOrDefault(task)?.Metric).FirstOrDefault(m => m is not null) ?? "score";

    /// <summary>Whether <paramref name="task"/> is scored by Matthews correlation (shown apart from the accuracy Avg).</summary>
    public bool IsMcc(string task) => Metric(task) == MccMetric;

    /// <summary>The method with id <paramref name="method"/>, or null.</summary>
    public MethodSummary? Find(string method) => Methods.FirstOrDefault(m => m.Method == method);

    /// <summary>Loads and aggregates a run folder.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="DataFormatException">It has no result files, a file is malformed (named), or a (seed, method) has two files.</exception>
    public static ExperimentResults Load(string runDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(runDir);
        if (!Directory.Exists(runDir)) throw new DirectoryNotFoundException($"run folder '{runDir}' does not exist");

        string recipePath = Path.Combine(runDir, "recipe.json"), manifestPath = Path.Combine(runDir, "manifest.json");
        var recipe = File.Exists(recipePath) ? RunJson.ReadObject(recipePath, "recipe") : null;
        var manifestJson = File.Exists(manifestPath) ? RunJson.ReadObject(manifestPath, "manifest") : null;
        IReadOnlyList<string> recipeTasks, recipeMethods;
        string? name;
        RunManifest? manifest;
        try
        {
            recipeTasks = recipe is null ? [] : RunJson.Strings(recipe, "tasks");
            recipeMethods = recipe is null ? [] : RunJson.Strings(recipe, "methods");
            name = recipe is null ? null : RunJson.String(recipe, "name");
            manifest = manifestJson is null ? null : RunManifest.FromJson(manifestJson);
            name ??= manifestJson is null ? null : RunJson.String(manifestJson, "name");
        }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw new DataFormatException($"malformed {(manifestJson is null ? recipePath : $"{recipePath} or {manifestPath}")}: {e.Message}", e);
        }

        var results = new List<MethodResult>();
        foreach (string seedDir in Directory.EnumerateDirectories(runDir, "seed-*").Order(StringComparer.Ordinal))
        {
            if (!int.TryParse(Path.GetFileName(seedDir)["seed-".Length..], out int seed)) continue;
            string resultsDir = Path.Combine(seedDir, "results");
            if (!Directory.Exists(resultsDir)) continue;
            foreach (string file in Directory.EnumerateFiles(resultsDir, "*.json").Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal))
                results.Add(MethodResult.Load(file, seed));
        }
        if (results.Count == 0)
            throw new DataFormatException($"'{runDir}' has no result files; expected {ExpectedLayout} (written by the experiment runner as each method finishes)");
        var twice = results.GroupBy(r => (r.Method, r.Seed)).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null)
            throw new DataFormatException($"method '{twice.Key.Method}' has two results for seed {twice.Key.Seed}: {string.Join(" and ", twice.Select(r => r.File))}");

        var methodOrder = recipeMethods.Concat(results.Select(r => r.Method)).Distinct().ToList();
        var tasks = recipeTasks.Concat(results.SelectMany(r => r.Scores.Keys)).Distinct().ToArray();
        var ordered = results.OrderBy(r => methodOrder.IndexOf(r.Method)).ThenBy(r => r.Seed).ToArray();
        var metrics = tasks.ToDictionary(t => t, t => ordered.Select(r => r.Scores.GetValueOrDefault(t)?.Metric).FirstOrDefault(m => m is not null) ?? "score");
        var baseline = ordered.Where(r => r.Method == PairedBaseline).ToDictionary(r => r.Seed);
        var methods = ordered.GroupBy(r => r.Method).Select(g => Summarise(g.ToArray(), tasks, metrics, baseline)).ToArray();
        return new ExperimentResults(runDir, name ?? Path.GetFileName(Path.GetFullPath(runDir).TrimEnd(Path.DirectorySeparatorChar)),
            tasks, ordered, methods, manifest);
    }

    private static MethodSummary Summarise(IReadOnlyList<MethodResult> seeds, IReadOnlyList<string> tasks,
        IReadOnlyDictionary<string, string> metrics, IReadOnlyDictionary<int, MethodResult> baseline)
    {
        var scores = new Dictionary<string, AggregatedScore>();
        var comparisons = new Dictionary<string, PairedComparison>();
        foreach (string task in tasks)
        {
            if (AggregatedScore.Of(seeds.Select(r => r.Scores.GetValueOrDefault(task)?.Value ?? double.NaN)) is not { } score) continue;
            // The interval over seeds and items, when every seed that scored the task recorded its items.
            var scored = seeds.Select(r => r.Scores.GetValueOrDefault(task)).Where(s => s is not null && double.IsFinite(s.Value)).ToArray();
            if (scored.All(s => s!.Items.Count > 0))
                score = score with { Ci95 = SeedItemBootstrap.Interval(metrics[task], scored.Select(s => s!.Items).ToArray()) };
            scores[task] = score;
            if (seeds[0].Method == PairedBaseline) continue;
            var pairs = seeds
                .Where(r => baseline.ContainsKey(r.Seed) && r.Scores.GetValueOrDefault(task) is { Items.Count: > 0 }
                    && baseline[r.Seed].Scores.GetValueOrDefault(task) is { Items.Count: > 0 })
                .Select(r => (r.Scores[task].Items, baseline[r.Seed].Scores[task].Items)).ToArray();
            if (pairs.Length > 0 && SeedItemBootstrap.Paired(PairedBaseline, metrics[task], pairs) is { } comparison)
                comparisons[task] = comparison;
        }
        // Per seed first, so the Avg's sd is the spread of whole runs, not of tasks; MCC tasks stay out.
        var accuracyTasks = tasks.Where(t => metrics[t] != MccMetric).ToArray();
        var perSeed = seeds
            .Where(r => accuracyTasks.Length > 0 && accuracyTasks.All(t => r.Scores.TryGetValue(t, out var s) && double.IsFinite(s.Value)))
            .Select(r => accuracyTasks.Average(t => r.Scores[t].Value));
        return new MethodSummary(seeds[0].Method, seeds[0].Label, seeds[0].Group, seeds.Select(r => r.Seed).ToArray(), scores,
            AggregatedScore.Of(perSeed), Mean(seeds.Select(r => (double?)r.TrainableParams)), Mean(seeds.Select(r => r.TokensPerSecond)),
            Mean(seeds.Select(r => r.Seconds))) { Comparisons = comparisons };
    }

    private static double? Mean(IEnumerable<double?> values)
    {
        var finite = values.OfType<double>().Where(double.IsFinite).ToArray();
        return finite.Length > 0 ? finite.Average() : null;
    }
}
