using System.Diagnostics;
using System.Text;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// lm-eval's <c>multiple_choice</c> output type shared by ARC, MedQA, SST-2, CoLA and JSONL choice tasks: one
/// log-likelihood request per choice (context, " " + choice), the prediction is the arg-max (first on ties, as
/// numpy); <c>acc_norm</c> divides each log-likelihood by the choice's length in characters, <c>acc_bytes</c> by its
/// UTF-8 bytes (<see cref="ChoicePrediction"/>). Few-shot exemplars are "text answer"
/// blocks separated by a blank line, drawn by <see cref="EvalSubset.FewShot"/> from the exemplar pool, never from the
/// scored split unless the pool is that split (then each example is excluded from its own exemplars); without a pool
/// the prompt is 0-shot and the result says so (<see cref="FewShotPlan"/>).
/// </summary>
internal static class LoglikelihoodProtocol
{
    public const string TargetDelimiter = " ";
    public const string FewShotDelimiter = "\n\n";

    /// <summary>What one task supplies: its documents' text, choices and gold, and which metrics it reports.</summary>
    public sealed record Spec<T>(
        string Task, string TemplateId, IReadOnlyList<T> Examples, IReadOnlyList<T>? FewShotPool,
        Func<T, string> Text, Func<T, IReadOnlyList<string>> Choices, Func<T, int> Gold,
        bool AccNorm, bool Mcc)
    {
        /// <summary>lm-eval's task version and LoraMixer's protocol revision.</summary>
        public string ProtocolVersion { get; init; } = "";
        /// <summary>Also report acc_bytes (ARC).</summary>
        public bool AccBytes { get; init; }
        /// <summary>The pool is the scored split itself (named by --fewshot-split): leave each example out of its exemplars.</summary>
        public bool PoolIsEvaluatedSplit { get; init; }
        /// <summary>Exemplars when <see cref="EvalOptions.Shots"/> is null (lm-eval's num_fewshot).</summary>
        public int DefaultShots { get; init; }
    }

    public static EvalResult Run<T>(Spec<T> spec, ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var (shots, notes) = FewShotPlan.Resolve(spec.Task, options.Shots, spec.DefaultShots, spec.FewShotPool is not null);
        var selected = EvalSubset.Choose(spec.Examples.Count, options.Limit, options.LimitSeed);

        var requests = new List<LoglikelihoodRequest>();
        var firstRequest = new int[selected.Count];
        for (int s = 0; s < selected.Count; s++)
        {
            var example = spec.Examples[selected[s]];
            string context = Context(spec, selected[s], shots, options.Seed);
            firstRequest[s] = requests.Count;
            foreach (string choice in spec.Choices(example))
                requests.Add(new LoglikelihoodRequest(context, TargetDelimiter + choice));
        }

        var clock = Stopwatch.StartNew();
        var scores = new LoglikelihoodScorer(model, tokenizer, options.BatchSize, promptEnds: options.PromptEnds).Score(requests, progress, cancellationToken);
        double seconds = clock.Elapsed.TotalSeconds;
        long tokens = scores.Sum(r => (long)r.InputTokens);

        var predicted = new int[selected.Count];
        var predictedNorm = new int[selected.Count];
        var predictedBytes = new int[selected.Count];
        var gold = new int[selected.Count];
        for (int s = 0; s < selected.Count; s++)
        {
            var example = spec.Examples[selected[s]];
            var choices = spec.Choices(example);
            var ll = Enumerable.Range(0, choices.Count).Select(c => scores[firstRequest[s] + c].LogLikelihood).ToArray();
            predicted[s] = ChoicePrediction.Raw(ll);
            predictedNorm[s] = ChoicePrediction.PerCharacter(ll, choices);
            predictedBytes[s] = ChoicePrediction.PerByte(ll, choices);
            gold[s] = spec.Gold(example);
        }

        var metrics = new List<MetricValue>();
        if (spec.Mcc)
        {
            var pairs = Enumerable.Range(0, gold.Length).Select(i => (P: predicted[i], G: gold[i])).ToArray();
            metrics.Add(new MetricValue("mcc", ClassificationMetrics.MatthewsCorrelation(predicted, gold),
                Bootstrap.Percentile(pairs, sample => ClassificationMetrics.MatthewsCorrelation(
                    sample.Select(p => p.P).ToArray(), sample.Select(p => p.G).ToArray()), options.BootstrapResamples, options.Seed)));
        }
        metrics.Add(Accuracy("acc", predicted, gold, options));
        if (spec.AccNorm) metrics.Add(Accuracy("acc_norm", predictedNorm, gold, options));
        if (spec.AccBytes) metrics.Add(Accuracy("acc_bytes", predictedBytes, gold, options));
        var items = Enumerable.Range(0, selected.Count)
            .Select(s => new ItemOutcome(selected[s], predicted[s] == gold[s] ? 1 : 0, predicted[s], gold[s])).ToArray();
        return new EvalResult(spec.Task, metrics, selected.Count, spec.TemplateId, shots, seconds, seconds > 0 ? tokens / seconds : 0)
        {
            ProtocolVersion = spec.ProtocolVersion,
            Notes = notes,
            Items = items,
            Subset = EvalSubset.Describe(spec.Examples.Count, selected.Count, options.Limit, options.LimitSeed),
        };
    }

    /// <summary>The full context of example <paramref name="index"/>: <paramref name="shots"/> exemplars, then the example's text.</summary>
    public static string Context<T>(Spec<T> spec, int index, int shots, int seed)
    {
        string text = spec.Text(spec.Examples[index]);
        if (shots == 0 || spec.FewShotPool is not { } pool) return text;
        var drawn = EvalSubset.FewShot(pool.Count, shots, seed, index, spec.PoolIsEvaluatedSplit ? index : null);
        var builder = new StringBuilder();
        foreach (int i in drawn)
        {
            var exemplar = pool[i];
            builder.Append(spec.Text(exemplar)).Append(TargetDelimiter).Append(spec.Choices(exemplar)[spec.Gold(exemplar)]).Append(FewShotDelimiter);
        }
        return builder.Append(text).ToString();
    }

    public static MetricValue Accuracy(string name, IReadOnlyList<int> predicted, IReadOnlyList<int> gold, EvalOptions options)
    {
        var correct = Enumerable.Range(0, gold.Count).Select(i => predicted[i] == gold[i] ? 1.0 : 0.0).ToArray();
        return new MetricValue(name, ClassificationMetrics.Accuracy(predicted, gold),
            Bootstrap.Mean(correct, options.BootstrapResamples, options.Seed));
    }
}
