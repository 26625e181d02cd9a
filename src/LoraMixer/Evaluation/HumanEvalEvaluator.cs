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

    /// <summary>Generated tokens per problem when <see cref="EvalOptions.MaxNewTokens"/> is unset.</summary>
    public const int DefaultMaxNewTokens = 512;

    private readonly IReadOnlyList<HumanEvalProblem> _problems;

    /// <summary>Creates the evaluator over <paramref name="problems"/>.</summary>
    public HumanEvalEvaluator(IReadOnlyList<HumanEvalProblem> problems) =>
        _problems = problems ?? throw new ArgumentNullException(nameof(problems));

    /// <inheritdoc/>
    public string Task => "humaneval";

    /// <inheritdoc/>
    public int Count => _problems.Count;

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
        if (options.Shots != 0) throw new ArgumentException($"HumanEval is zero-shot; got {options.Shots} shots");
        var executor = new CodeExecutor(options.CodeExecution); // refuses before any generation work
        var selected = EvalSubset.Select(_problems.Count, options.Limit, options.Seed);
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
        var passedPerProblem = Enumerable.Range(0, selected.Count).Select(p => Enumerable.Range(p * n, n).Count(s => results[s].Passed)).ToArray();
        var metrics = ReportedK(n).Select(k =>
        {
            var estimates = passedPerProblem.Select(c => PassAtK.Estimate(n, c, k)).ToArray();
            return new MetricValue($"pass@{k}", estimates.Length == 0 ? double.NaN : estimates.Average(),
                Bootstrap.Mean(estimates, options.BootstrapResamples, options.Seed));
        }).ToArray();
        double seconds = clock.Elapsed.TotalSeconds;
        return new EvalResult(Task, metrics, selected.Count, TemplateId, 0, seconds,
            generationSeconds > 0 ? generated / generationSeconds : 0, n, prompts.Count(p => p.Truncated));
    }
}
