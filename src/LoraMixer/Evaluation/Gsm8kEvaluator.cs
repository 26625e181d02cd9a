using System.Diagnostics;
using System.Text;
using LoraMixer.Errors;
using LoraMixer.Generation;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// GSM8K by greedy chain-of-thought generation, scored as lm-eval's <c>gsm8k</c> (exact_match, strict-match and
/// flexible-extract). Few-shot: blocks "Question: {q}\nAnswer: {reference rationale ending in #### N}" drawn per
/// example (seeded) from the train split, separated by a blank line, then "Question: {q}\nAnswer:". Zero-shot:
/// "Question: {q}\nAnswer: Let's think step by step." Generation stops at "Question:" or a blank line. Prompts
/// longer than the model's window keep their end (<see cref="GenerationPrompt"/>).
/// </summary>
public sealed class Gsm8kEvaluator : ITaskEvaluator
{
    /// <summary>Identifies the prompt wording.</summary>
    public const string TemplateId = "gsm8k-question-answer-cot-v1";

    /// <summary>Where generation stops.</summary>
    public static readonly IReadOnlyList<string> StopStrings = ["Question:", "\n\n"];

    /// <summary>Generated tokens per example when <see cref="EvalOptions.MaxNewTokens"/> is unset (lm-eval's max_gen_toks).</summary>
    public const int DefaultMaxNewTokens = 256;

    private readonly IReadOnlyList<Gsm8kExample> _examples;
    private readonly IReadOnlyList<Gsm8kExample>? _fewShotPool;

    /// <summary>Creates the evaluator; <paramref name="fewShotPool"/> (the train split) is needed when shots &gt; 0.</summary>
    public Gsm8kEvaluator(IReadOnlyList<Gsm8kExample> examples, IReadOnlyList<Gsm8kExample>? fewShotPool = null)
    {
        _examples = examples ?? throw new ArgumentNullException(nameof(examples));
        _fewShotPool = fewShotPool;
    }

    /// <inheritdoc/>
    public string Task => "gsm8k";

    /// <inheritdoc/>
    public int Count => _examples.Count;

    /// <summary>The prompt of example <paramref name="index"/> with <paramref name="shots"/> exemplars.</summary>
    /// <exception cref="DataFormatException">Shots were asked for but no train split was given.</exception>
    public string Prompt(int index, int shots, int seed)
    {
        var example = _examples[index];
        if (shots == 0) return $"Question: {example.Question}\nAnswer: Let's think step by step.";
        if (_fewShotPool is null)
            throw new DataFormatException(
                $"GSM8K with {shots} shots needs the train split {EvalDataLocator.TrainRelativePath(EvalTask.Gsm8k)} in the data folder for exemplars; add it or use --shots 0.");
        var builder = new StringBuilder();
        foreach (int i in EvalSubset.FewShot(_fewShotPool.Count, shots, seed, index))
            builder.Append("Question: ").Append(_fewShotPool[i].Question).Append("\nAnswer: ").Append(_fewShotPool[i].Answer).Append("\n\n");
        return builder.Append("Question: ").Append(example.Question).Append("\nAnswer:").ToString();
    }

    /// <inheritdoc/>
    public EvalResult Evaluate(ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var selected = EvalSubset.Select(_examples.Count, options.Limit, options.Seed);
        var generation = new GenerationOptions
        {
            MaxNewTokens = options.MaxNewTokens ?? DefaultMaxNewTokens,
            Temperature = 0,
            StopStrings = StopStrings,
        };
        var prompts = selected.Select(i => GenerationPrompt.Encode(tokenizer, Prompt(i, options.Shots, options.Seed),
            model.MaxPositionEmbeddings, generation.MaxNewTokens)).ToArray();
        var generator = new TextGenerator(model, tokenizer);
        var strict = new double[selected.Count];
        var flexible = new double[selected.Count];
        long generated = 0;
        var clock = Stopwatch.StartNew();
        for (int start = 0; start < selected.Count; start += options.BatchSize)
        {
            int count = Math.Min(options.BatchSize, selected.Count - start);
            var outputs = generator.GenerateFromIds(prompts.Skip(start).Take(count).Select(p => p.Ids).ToArray(), generation,
                cancellationToken: cancellationToken);
            for (int j = 0; j < count; j++)
            {
                string gold = _examples[selected[start + j]].Gold;
                strict[start + j] = Gsm8kAnswer.IsMatch(Gsm8kAnswer.ExtractStrict(outputs[j].Text), gold) ? 1 : 0;
                flexible[start + j] = Gsm8kAnswer.IsMatch(Gsm8kAnswer.ExtractFlexible(outputs[j].Text), gold) ? 1 : 0;
                generated += outputs[j].TokenIds.Count;
            }
            progress?.Report((start + count, selected.Count));
        }
        double seconds = clock.Elapsed.TotalSeconds;
        var metrics = new[]
        {
            new MetricValue("exact_match,strict-match", Mean(strict), Bootstrap.Mean(strict, options.BootstrapResamples, options.Seed)),
            new MetricValue("exact_match,flexible-extract", Mean(flexible), Bootstrap.Mean(flexible, options.BootstrapResamples, options.Seed)),
        };
        return new EvalResult(Task, metrics, selected.Count, TemplateId, options.Shots, seconds, seconds > 0 ? generated / seconds : 0,
            TruncatedPrompts: prompts.Count(p => p.Truncated));
    }

    private static double Mean(double[] values) => values.Length == 0 ? double.NaN : values.Average();
}
