using System.Diagnostics;
using LoraMixer.Generation;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// HumanEval: greedy completion of each prompt (stopping at "\nclass", "\ndef", "\n#", "\nif", "\nprint" as in
/// openai/human-eval), then execution of prompt + completion + test + <c>check(entry_point)</c> by
/// <see cref="CodeExecutor"/>; metric pass@1 (one greedy sample per problem). Refused unless
/// <see cref="CodeExecutionOptions.AllowCodeExecution"/> is set.
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
        var generation = new GenerationOptions { MaxNewTokens = options.MaxNewTokens ?? DefaultMaxNewTokens, Temperature = 0, StopStrings = StopStrings };
        var generator = new TextGenerator(model, tokenizer);
        var programs = new string[selected.Count];
        long generated = 0;
        var clock = Stopwatch.StartNew();
        for (int start = 0; start < selected.Count; start += options.BatchSize)
        {
            int count = Math.Min(options.BatchSize, selected.Count - start);
            var batch = Enumerable.Range(start, count).Select(s => _problems[selected[s]]).ToArray();
            var outputs = generator.Generate(batch.Select(p => p.Prompt).ToArray(), generation, cancellationToken: cancellationToken);
            for (int j = 0; j < count; j++)
            {
                programs[start + j] = CodeExecutor.HumanEvalProgram(batch[j], outputs[j].Text);
                generated += outputs[j].TokenIds.Count;
            }
            progress?.Report((start + count, 2 * selected.Count));
        }
        double generationSeconds = clock.Elapsed.TotalSeconds;
        var results = executor.RunMany(programs,
            progress is null ? null : new Progress<(int Done, int Total)>(p => progress.Report((selected.Count + p.Done, 2 * selected.Count))),
            cancellationToken);
        var passed = results.Select(r => r.Passed ? 1.0 : 0.0).ToArray();
        double seconds = clock.Elapsed.TotalSeconds;
        var metric = new MetricValue("pass@1", passed.Length == 0 ? double.NaN : passed.Average(),
            Bootstrap.Mean(passed, options.BootstrapResamples, options.Seed));
        return new EvalResult(Task, new[] { metric }, selected.Count, TemplateId, 0, seconds,
            generationSeconds > 0 ? generated / generationSeconds : 0);
    }
}
