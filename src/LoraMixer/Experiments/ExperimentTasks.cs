using LoraMixer.Data;
using LoraMixer.Demo;
using LoraMixer.Evaluation;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Experiments;

/// <summary>
/// The tasks of one seed of an experiment: training records per task, the mixed stage-2 sample, and scoring
/// on held-out items. Demo tasks are generated (scored by exact match of greedy answers); benchmark tasks come
/// from the data folder in the evaluation prompt format (scored by their lm-evaluation-harness protocol on a
/// deterministic subset of the test file, the same for every seed).
/// </summary>
public sealed class ExperimentTasks
{
    /// <summary>Benchmarks with a training split, by recipe name.</summary>
    public static readonly IReadOnlyDictionary<string, EvalTask> Benchmarks = new Dictionary<string, EvalTask>
    {
        ["sst2"] = EvalTask.Sst2, ["cola"] = EvalTask.Cola, ["medqa"] = EvalTask.MedQa, ["gsm8k"] = EvalTask.Gsm8k,
        ["arc-e"] = EvalTask.ArcEasy, ["arc-c"] = EvalTask.ArcChallenge,
    };

    private const int EvalSeed = 1234;
    private readonly ExperimentRecipe _recipe;
    private readonly EvalDataLocator? _locator;
    private readonly Dictionary<string, IReadOnlyList<DemoItem>> _demoTests = new();
    private readonly Dictionary<string, ITaskEvaluator> _evaluators = new();

    /// <summary>Builds the data of <paramref name="seed"/>; benchmark files are read from <paramref name="locator"/>.</summary>
    public ExperimentTasks(ExperimentRecipe recipe, int seed, EvalDataLocator? locator, Action<string>? warn = null)
    {
        _recipe = recipe;
        _locator = locator;
        var train = new Dictionary<string, IReadOnlyList<TrainingRecord>>();
        foreach (var task in recipe.Tasks)
        {
            if (Benchmarks.TryGetValue(task, out var benchmark))
            {
                var loc = locator ?? throw new ArgumentException($"task {task} needs the benchmark folder: set data_dir or ${EvalDataLocator.EnvironmentVariable}");
                string path = loc.TrainPathFor(benchmark)
                    ?? throw new Errors.DataFormatException($"{task}: training split not found, expected {Path.Combine(loc.Root, EvalDataLocator.TrainRelativePath(benchmark)!)}");
                var all = BenchmarkRecords.Load(benchmark, path, task, warn);
                train[task] = EvalSubset.Select(all.Count, recipe.Stage1Samples, seed).Select(i => all[i]).ToArray();
                _evaluators[task] = TaskEvaluators.Create(benchmark, loc, warn);
            }
            else
            {
                var (tr, te) = DemoSuite.GenerateSplit(task, recipe.Stage1Samples, recipe.DemoTestPerTask, seed);
                train[task] = tr.Select(DemoSuite.ToRecord).ToArray();
                _demoTests[task] = te;
            }
        }
        TrainByTask = train;
        var rng = new Random(seed);
        Train = train.Values.SelectMany(r => r).OrderBy(_ => rng.Next()).ToArray();
        Stage2 = Train.OrderBy(_ => rng.Next()).Take(recipe.Stage2Samples).ToArray();
    }

    /// <summary>Training records by task.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<TrainingRecord>> TrainByTask { get; }

    /// <summary>Every training record, shuffled.</summary>
    public IReadOnlyList<TrainingRecord> Train { get; }

    /// <summary>The mixed sample of router training (stage 2).</summary>
    public IReadOnlyList<TrainingRecord> Stage2 { get; }

    /// <summary>Held-out items of the demo tasks, as test records (prompt and answer); none for benchmarks.</summary>
    public IReadOnlyList<TrainingRecord> HeldOutRecords =>
        _recipe.Tasks.Where(_demoTests.ContainsKey).SelectMany(t => _demoTests[t]).Select(DemoSuite.ToRecord).ToArray();

    /// <summary><see cref="HeldOutRecords"/> encoded for routing statistics.</summary>
    public IReadOnlyList<EncodedExample> HeldOut(ITokenizer tokenizer, int maxLength)
    {
        var encoder = new ExampleEncoder(tokenizer, maxLength, _recipe.Tasks);
        return HeldOutRecords.Select(encoder.Encode).ToArray();
    }

    /// <summary>Checks that <paramref name="task"/> is a demo task or a benchmark with a training split.</summary>
    public static void Check(string task)
    {
        if (task == "humaneval") throw new ArgumentException("tasks: humaneval has no training split, so it cannot have an expert; evaluate it with `loramixer eval`");
        if (!Benchmarks.ContainsKey(task) && DemoSuite.Tasks.All(t => t.Name != task))
            throw new ArgumentException($"tasks: unknown task '{task}'; known: {string.Join(", ", DemoSuite.Tasks.Select(t => t.Name).Concat(Benchmarks.Keys))}");
    }

    /// <summary>True when a recipe's tasks need the benchmark folder.</summary>
    public static bool NeedsData(ExperimentRecipe recipe) => recipe.Tasks.Any(Benchmarks.ContainsKey);

    /// <summary>The data files a recipe reads (for the manifest's hashes).</summary>
    public static IReadOnlyList<string> DataFiles(ExperimentRecipe recipe, EvalDataLocator locator) =>
        recipe.Tasks.Where(Benchmarks.ContainsKey).SelectMany(t => locator.ExistingFiles(Benchmarks[t])).Distinct().ToArray();

    /// <summary>
    /// Scores <paramref name="model"/> on the held-out items of <paramref name="task"/>: the metric's name, its
    /// value in percent (MCC × 100 for CoLA), the number of items, the 95% interval, generated or scored tokens and seconds.
    /// </summary>
    /// <param name="task">The task.</param>
    /// <param name="model">The model (possibly adapted or mixed).</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="promptEnds">For a mixer that routes once per prompt: where scored contexts end (<see cref="EvalOptions.PromptEnds"/>).</param>
    public ScoreMeasurement Score(string task, ICausalLM model, ITokenizer tokenizer, Action<TorchSharp.torch.Tensor?>? promptEnds = null)
    {
        if (_demoTests.TryGetValue(task, out var items))
        {
            var (accuracy, correct, tokens, seconds) = DemoScorer.Score(model, tokenizer, items);
            var ci = Bootstrap.Mean(correct.Select(c => c ? 1.0 : 0.0).ToArray(), Bootstrap.DefaultResamples, EvalSeed);
            return new ScoreMeasurement("accuracy", accuracy, items.Count, 100 * ci.Lower, 100 * ci.Upper, tokens / Math.Max(1e-9, seconds), seconds)
            {
                Items = correct.Select((c, i) => new ItemOutcome(i, c ? 1 : 0)).ToArray(),
            };
        }
        var result = _evaluators[task].Evaluate(model, tokenizer, new EvalOptions
        {
            // The same random subset for every method and seed, 0-shot as the experts are trained (prompt, then answer).
            Limit = _recipe.EvalLimit, LimitSeed = EvalSeed, Shots = 0, Seed = EvalSeed, BatchSize = 16, PromptEnds = promptEnds,
        });
        var metric = result.Metrics.FirstOrDefault(m => m.Name == "mcc") ?? result.Metrics.FirstOrDefault(m => m.Name == "acc")
            ?? result.Metrics.FirstOrDefault(m => m.Name.StartsWith("exact_match,strict", StringComparison.Ordinal)) ?? result.Metrics[0];
        string name = metric.Name switch { "acc" => "accuracy", var n => n };
        return new ScoreMeasurement(name, 100 * metric.Value, result.N, 100 * metric.Ci95.Lower, 100 * metric.Ci95.Upper, result.TokensPerSecond, result.Seconds)
        {
            Items = result.Items,
        };
    }
}
