using System.Diagnostics;
using System.Text;
using LoraMixer.Generation;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// GSM8K by greedy generation, scored as lm-eval (exact_match after the task's <c>regexes_to_ignore</c>, with the
/// strict-match and flexible-extract filters). Two tasks:
/// <c>gsm8k</c> (v3.0): "Question: {q}\nAnswer:", 5 exemplars "Question: {q}\nAnswer: {reference solution ending in
/// #### N}" from the train split, separated by a blank line; stops "Question:", "&lt;/s&gt;", "&lt;|im_end|&gt;";
/// strict-match is the number after "#### ".
/// <c>gsm8k_cot_zeroshot</c> (v3.0): "Q: {q}\nA: Let's think step by step.", 0-shot; stops "Q:", "&lt;/s&gt;",
/// "&lt;|im_end|&gt;"; strict-match is the number after "The answer is".
/// Both generate up to 256 tokens (lm-eval's max_gen_toks). Prompts longer than the model's window keep their end
/// (<see cref="GenerationPrompt"/>).
/// </summary>
public sealed class Gsm8kEvaluator : ITaskEvaluator
{
    /// <summary>Identifies the prompt wording of <c>gsm8k</c>.</summary>
    public const string TemplateId = "gsm8k-question-answer-v3";

    /// <summary>Identifies the prompt wording of <c>gsm8k_cot_zeroshot</c>.</summary>
    public const string CotZeroShotTemplateId = "gsm8k-cot-zeroshot-v3";

    /// <summary>Where <c>gsm8k</c> generation stops (lm-eval v3).</summary>
    public static readonly IReadOnlyList<string> StopStrings = ["Question:", "</s>", "<|im_end|>"];

    /// <summary>Where <c>gsm8k_cot_zeroshot</c> generation stops.</summary>
    public static readonly IReadOnlyList<string> CotZeroShotStopStrings = ["Q:", "</s>", "<|im_end|>"];

    /// <summary>Generated tokens per example when <see cref="EvalOptions.MaxNewTokens"/> is unset (lm-eval's max_gen_toks).</summary>
    public const int DefaultMaxNewTokens = 256;

    private readonly IReadOnlyList<Gsm8kExample> _examples;
    private readonly IReadOnlyList<Gsm8kExample>? _fewShotPool;
    private readonly bool _cotZeroShot;
    private readonly bool _poolIsEvaluatedSplit;

    /// <summary>
    /// Creates the evaluator; <paramref name="fewShotPool"/> is the exemplar split (train); without it the prompts
    /// are 0-shot and the result says so. <paramref name="cotZeroShot"/> selects <c>gsm8k_cot_zeroshot</c>.
    /// </summary>
    public Gsm8kEvaluator(IReadOnlyList<Gsm8kExample> examples, IReadOnlyList<Gsm8kExample>? fewShotPool = null, bool cotZeroShot = false,
        bool poolIsEvaluatedSplit = false)
    {
        _examples = examples ?? throw new ArgumentNullException(nameof(examples));
        _fewShotPool = fewShotPool;
        _cotZeroShot = cotZeroShot;
        _poolIsEvaluatedSplit = poolIsEvaluatedSplit;
    }

    /// <inheritdoc/>
    public string Task => _cotZeroShot ? "gsm8k_cot_zeroshot" : "gsm8k";

    /// <inheritdoc/>
    public int Count => _examples.Count;

    /// <inheritdoc/>
    public int DefaultShots => _cotZeroShot ? 0 : 5;

    /// <summary>The lm-eval task version and LoraMixer's protocol revision, recorded in every result.</summary>
    public string ProtocolVersion => $"lm-eval {Task} 3.0; loramixer 2";

    private string Text(Gsm8kExample e) => _cotZeroShot ? $"Q: {e.Question}\nA: Let's think step by step." : $"Question: {e.Question}\nAnswer:";

    /// <summary>
    /// The prompt of example <paramref name="index"/> with <paramref name="shots"/> exemplars from the pool
    /// (lm-eval: doc_to_text + " " + the reference solution, blocks separated by a blank line).
    /// </summary>
    public string Prompt(int index, int shots, int seed)
    {
        var example = _examples[index];
        if (shots == 0 || _fewShotPool is null) return Text(example);
        var builder = new StringBuilder();
        foreach (int i in EvalSubset.FewShot(_fewShotPool.Count, shots, seed, index, _poolIsEvaluatedSplit ? index : null))
            builder.Append(Text(_fewShotPool[i])).Append(' ').Append(_fewShotPool[i].Answer).Append("\n\n");
        return builder.Append(Text(example)).ToString();
    }

    /// <inheritdoc/>
    public EvalResult Evaluate(ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var (shots, notes) = FewShotPlan.Resolve(Task, options.Shots, DefaultShots, _fewShotPool is not null);
        var selected = EvalSubset.Choose(_examples.Count, options.Limit, options.LimitSeed);
        var generation = new GenerationOptions
        {
            MaxNewTokens = options.MaxNewTokens ?? DefaultMaxNewTokens,
            Temperature = 0,
            StopStrings = _cotZeroShot ? CotZeroShotStopStrings : StopStrings,
        };
        var prompts = selected.Select(i => GenerationPrompt.Encode(tokenizer, Prompt(i, shots, options.Seed),
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
                string strictAnswer = _cotZeroShot ? Gsm8kAnswer.ExtractStrictCot(outputs[j].Text) : Gsm8kAnswer.ExtractStrict(outputs[j].Text);
                strict[start + j] = Gsm8kAnswer.IsMatch(strictAnswer, gold) ? 1 : 0;
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
        return new EvalResult(Task, metrics, selected.Count, _cotZeroShot ? CotZeroShotTemplateId : TemplateId, shots, seconds,
            seconds > 0 ? generated / seconds : 0, TruncatedPrompts: prompts.Count(p => p.Truncated))
        {
            ProtocolVersion = ProtocolVersion,
            Notes = notes,
            Items = selected.Select((index, s) => new ItemOutcome(index, strict[s])).ToArray(),
            Subset = EvalSubset.Describe(_examples.Count, selected.Count, options.Limit, options.LimitSeed),
        };
    }

    private static double Mean(double[] values) => values.Length == 0 ? double.NaN : values.Average();
}
