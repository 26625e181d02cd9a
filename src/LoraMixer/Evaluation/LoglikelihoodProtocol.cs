using System.Diagnostics;
using System.Text;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// lm-eval's <c>multiple_choice</c> output type shared by ARC, MedQA, SST-2 and CoLA: one log-likelihood request
/// per choice (context, " " + choice), the prediction is the arg-max (first on ties, as numpy); acc_norm divides
/// each log-likelihood by the UTF-8 byte length of the choice text (lm-eval divides by <c>len(choice)</c>, the same
/// for ASCII). Few-shot exemplars are "text answer" blocks separated by a blank line, drawn by <see cref="EvalSubset.FewShot"/>
/// from the training pool or, without one, from the evaluated split minus the example itself.
/// </summary>
internal static class LoglikelihoodProtocol
{
    public const string TargetDelimiter = " ";
    public const string FewShotDelimiter = "\n\n";

    /// <summary>What one task supplies: its documents' text, choices and gold, and which metrics it reports.</summary>
    public sealed record Spec<T>(
        string Task, string TemplateId, IReadOnlyList<T> Examples, IReadOnlyList<T>? FewShotPool,
        Func<T, string> Text, Func<T, IReadOnlyList<string>> Choices, Func<T, int> Gold,
        bool AccNorm, bool Mcc);

    public static EvalResult Run<T>(Spec<T> spec, ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var selected = EvalSubset.Select(spec.Examples.Count, options.Limit, options.Seed);

        var requests = new List<LoglikelihoodRequest>();
        var firstRequest = new int[selected.Count];
        for (int s = 0; s < selected.Count; s++)
        {
            var example = spec.Examples[selected[s]];
            string context = Context(spec, selected[s], options);
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
        var gold = new int[selected.Count];
        for (int s = 0; s < selected.Count; s++)
        {
            var example = spec.Examples[selected[s]];
            var choices = spec.Choices(example);
            int best = 0, bestNorm = 0;
            double bestLl = double.NegativeInfinity, bestNormLl = double.NegativeInfinity;
            for (int c = 0; c < choices.Count; c++)
            {
                double ll = scores[firstRequest[s] + c].LogLikelihood;
                double norm = ll / Math.Max(1, Encoding.UTF8.GetByteCount(choices[c]));
                if (ll > bestLl) { bestLl = ll; best = c; }
                if (norm > bestNormLl) { bestNormLl = norm; bestNorm = c; }
            }
            predicted[s] = best;
            predictedNorm[s] = bestNorm;
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
        return new EvalResult(spec.Task, metrics, selected.Count, spec.TemplateId, options.Shots, seconds,
            seconds > 0 ? tokens / seconds : 0);
    }

    /// <summary>The full context of example <paramref name="index"/>: exemplars, then the example's text.</summary>
    public static string Context<T>(Spec<T> spec, int index, EvalOptions options)
    {
        string text = spec.Text(spec.Examples[index]);
        if (options.Shots == 0) return text;
        var pool = spec.FewShotPool ?? spec.Examples;
        var shots = EvalSubset.FewShot(pool.Count, options.Shots, options.Seed, index, spec.FewShotPool is null ? index : null);
        var builder = new StringBuilder();
        foreach (int i in shots)
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
