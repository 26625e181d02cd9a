using System.Diagnostics;
using LoraMixer.Generation;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// HumanEval: greedy completion of each prompt (stopping at "\nclass", "\ndef", "\n#", "\nif", "\nprint" as in
/// openai/human-eval), then execution of prompt + completion + test + <c>check(entry_point)</c> by
/// <see cref="CodeExecutor"/>; metric pass@1 of one greedy completion per problem, or with
/// <see cref="EvalOptions.Samples"/> n &gt; 1 sampled completions the unbiased pass@k (<see cref="PassAtK"/>) for
/// k = 1, 10, 100 up to n. Refused unless <see cref="CodeExecutionOptions.AllowCodeExecution"/> is set.
/// </summary>
public sealed class HumanEvalEvaluator : ITaskEvaluator
{
    /// <summary>Identifies the prompt wording (the raw prompt, zero-shot).</summary>
    public const string TemplateId = "humaneval-raw-prompt-v1";

    /// <summary>Where generation stops.</summary>
    public static readonly IReadOnlyList<string> StopStrings = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"];

    /// <summary>The template id of a result scored from completions made elsewhere (<see cref="Score"/>).</summary>
    public const string CompletionsTemplateId = "humaneval-external-completions";

    /// <summary>openai/human-eval's protocol as lm-eval's <c>humaneval</c> task, and LoraMixer's revision of it.</summary>
    public const string ProtocolVersion = "lm-eval humaneval 1.0 (openai/human-eval execution); loramixer 2";

    /// <summary>Generated tokens per problem when <see cref="EvalOptions.MaxNewTokens"/> is unset.</summary>
    public const int DefaultMaxNewTokens = 1024;

    private readonly IReadOnlyList<HumanEvalProblem> _problems;

    /// <summary>Creates the evaluator over <paramref name="problems"/>.</summary>
    public HumanEvalEvaluator(IReadOnlyList<HumanEvalProblem> problems) =>
        _problems = problems ?? throw new ArgumentNullException(nameof(problems));

    /// <inheritdoc/>
    public string Task => "humaneval";

    /// <inheritdoc/>
    public int Count => _problems.Count;

    /// <summary>The problems, e.g. to check a completions file against (<see cref="HumanEvalCompletionsLoader"/>).</summary>
    public IReadOnlyList<HumanEvalProblem> Problems => _problems;

    // The k of pass@k reported for n completions per problem: 1, 10, 100 up to n.
    private static IReadOnlyList<int> ReportedK(int samples) => new[] { 1, 10, 100 }.Where(k => k <= samples).ToArray();

    /// <inheritdoc/>
    /// <exception cref="CodeExecutionNotAllowedException">Code execution is not allowed in <paramref name="options"/>.</exception>
    public EvalResult Evaluate(ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.Shots is > 0) throw new ArgumentException($"HumanEval is zero-shot; got {options.Shots} shots");
        var executor = new CodeExecutor(options.CodeExecution); // refuses before any generation work
        var selected = EvalSubset.Choose(_problems.Count, options.Limit, options.LimitSeed);
        int n = options.Samples;
        var generation = new GenerationOptions
        {
            MaxNewTokens = options.MaxNewTokens ?? DefaultMaxNewTokens,
            Temperature = n == 1 ? 0 : options.SamplingTemperature,
            TopP = n == 1 ? 1 : options.SamplingTopP,
            StopStrings = StopStrings,
        };
        var prompts = selected.Select(i => GenerationPrompt.Encode(tokenizer, _problems[i].Prompt, model.MaxPositionEmbeddings, generation.MaxNewTokens)).ToArray();
        var generator = new TextGenerator(model, tokenizer);
        // Sequence s is completion s % n of selected problem s / n.
        int sequences = selected.Count * n;
        var programs = new string[sequences];
        long generated = 0;
        var clock = Stopwatch.StartNew();
        for (int start = 0; start < sequences; start += options.BatchSize)
        {
            int count = Math.Min(options.BatchSize, sequences - start);
            var outputs = generator.GenerateFromIds(Enumerable.Range(start, count).Select(s => prompts[s / n].Ids).ToArray(),
                generation with { Seed = options.Seed + start }, cancellationToken: cancellationToken);
            for (int j = 0; j < count; j++)
            {
                programs[start + j] = CodeExecutor.HumanEvalProgram(_problems[selected[(start + j) / n]], outputs[j].Text);
                generated += outputs[j].TokenIds.Count;
            }
            progress?.Report((start + count, 2 * sequences));
        }
        double generationSeconds = clock.Elapsed.TotalSeconds;
        var results = executor.RunMany(programs,
            progress is null ? null : new Progress<(int Done, int Total)>(p => progress.Report((sequences + p.Done, 2 * sequences))),
            cancellationToken);
        var passedPerProblem = Enumerable.Range(0, selected.Count).Select(p => (n, Enumerable.Range(p * n, n).Count(s => results[s].Passed))).ToArray();
        return new EvalResult(Task, Metrics(passedPerProblem, options), selected.Count, TemplateId, 0, clock.Elapsed.TotalSeconds,
            generationSeconds > 0 ? generated / generationSeconds : 0, n, prompts.Count(p => p.Truncated))
        {
            Sandbox = executor.Sandbox,
            ProtocolVersion = ProtocolVersion,
            Subset = EvalSubset.Describe(_problems.Count, selected.Count, options.Limit, options.LimitSeed),
            Items = selected.Select((index, p) => new ItemOutcome(index, PassAtK.Estimate(n, passedPerProblem[p].Item2, 1))).ToArray(),
        };
    }

    /// <summary>
    /// Scores completions made elsewhere (human-eval's samples format, see <see cref="HumanEvalCompletionsLoader"/>)
    /// without a model: each runs against its problem's tests; pass@k for k = 1, 10, 100 up to the fewest completions
    /// of any problem, over the problems that have completions.
    /// </summary>
    /// <exception cref="CodeExecutionNotAllowedException">Code execution is not allowed in <paramref name="options"/>.</exception>
    /// <exception cref="ArgumentException">A completion names a task that is not among the problems.</exception>
    public EvalResult Score(IReadOnlyList<HumanEvalCompletion> completions, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(completions);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var executor = new CodeExecutor(options.CodeExecution);
        var byId = _problems.ToDictionary(p => p.TaskId, StringComparer.Ordinal);
        foreach (var c in completions)
            if (!byId.ContainsKey(c.TaskId)) throw new ArgumentException($"completion on line {c.Line} names unknown task '{c.TaskId}'");
        var clock = Stopwatch.StartNew();
        var programs = completions.Select(c => CodeExecutor.HumanEvalProgram(byId[c.TaskId], c.Completion)).ToArray();
        var results = executor.RunMany(programs, progress, cancellationToken);
        var perProblem = _problems.Select(p => Enumerable.Range(0, completions.Count).Where(i => completions[i].TaskId == p.TaskId).ToArray())
            .Where(indices => indices.Length > 0)
            .Select(indices => (indices.Length, indices.Count(i => results[i].Passed))).ToArray();
        return new EvalResult(Task, Metrics(perProblem, options), perProblem.Length, CompletionsTemplateId, 0, clock.Elapsed.TotalSeconds, 0,
            perProblem.Min(p => p.Item1)) { Sandbox = executor.Sandbox, ProtocolVersion = ProtocolVersion };
    }

    // pass@k (k = 1, 10, 100 up to the fewest samples) averaged over problems, from (samples, passed) per problem.
    private static MetricValue[] Metrics(IReadOnlyList<(int Samples, int Passed)> perProblem, EvalOptions options)
    {
        int fewest = perProblem.Count == 0 ? 1 : perProblem.Min(p => p.Samples);
        return ReportedK(fewest).Select(k =>
        {
            var estimates = perProblem.Select(p => PassAtK.Estimate(p.Samples, p.Passed, k)).ToArray();
            return new MetricValue($"pass@{k}", estimates.Length == 0 ? double.NaN : estimates.Average(),
                Bootstrap.Mean(estimates, options.BootstrapResamples, options.Seed));
        }).ToArray();
    }
}
