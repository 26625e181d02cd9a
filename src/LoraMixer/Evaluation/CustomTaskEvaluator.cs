using System.Diagnostics;
using System.Text;
using LoraMixer.Generation;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// A user's JSONL task (<see cref="CustomTaskLoader"/>), 0-shot, prompts used as written. Choice lines: lm-eval's
/// multiple-choice protocol (" " + choice, arg-max log-likelihood; acc, acc_norm by characters). Response lines:
/// greedy generation, stopping at EOS, at the first newline when no expected response contains one, and after the
/// longest response's token count + 16 (or <see cref="EvalOptions.MaxNewTokens"/>); metric exact_match of the
/// <see cref="Normalize">normalised</see> texts.
/// </summary>
public sealed class CustomTaskEvaluator : ITaskEvaluator
{
    /// <summary>Identifies the prompt handling.</summary>
    public const string TemplateId = "jsonl-prompt-as-written-v1";

    /// <summary>LoraMixer's protocol revision of custom tasks.</summary>
    public const string ProtocolVersion = "loramixer jsonl 1";

    private readonly IReadOnlyList<CustomExample> _examples;

    /// <summary>Creates the evaluator; <paramref name="name"/> is the task's name in results (e.g. jsonl:mine.jsonl).</summary>
    public CustomTaskEvaluator(string name, IReadOnlyList<CustomExample> examples)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _examples = examples ?? throw new ArgumentNullException(nameof(examples));
        if (_examples.Count == 0) throw new ArgumentException("a custom task needs at least one example", nameof(examples));
        Task = name;
    }

    /// <inheritdoc/>
    public string Task { get; }

    /// <inheritdoc/>
    public int Count => _examples.Count;

    /// <summary>True when the lines carry choices (scored by log-likelihood), false for responses (generation).</summary>
    public bool IsMultipleChoice => _examples[0].Choices is not null;

    /// <summary>
    /// The comparison form of a text: Unicode NFKC, lower case (invariant), whitespace runs as one space, trimmed.
    /// </summary>
    public static string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var builder = new StringBuilder();
        bool space = false;
        foreach (char c in text.Normalize(NormalizationForm.FormKC).ToLowerInvariant())
        {
            if (char.IsWhiteSpace(c)) { space = builder.Length > 0; continue; }
            if (space) builder.Append(' ');
            space = false;
            builder.Append(c);
        }
        return builder.ToString();
    }

    /// <inheritdoc/>
    public EvalResult Evaluate(ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (IsMultipleChoice)
        {
            return LoglikelihoodProtocol.Run(new LoglikelihoodProtocol.Spec<CustomExample>(Task, TemplateId, _examples, null,
                e => e.Prompt, e => e.Choices!, e => e.Gold, AccNorm: true, Mcc: false) { ProtocolVersion = ProtocolVersion },
                model, tokenizer, options, progress, cancellationToken);
        }
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        options.Validate();
        var (shots, notes) = FewShotPlan.Resolve(Task, options.Shots, 0, hasPool: false);
        var selected = EvalSubset.Choose(_examples.Count, options.Limit, options.LimitSeed);
        bool multiLine = selected.Any(i => _examples[i].Response!.Contains('\n'));
        var generation = new GenerationOptions
        {
            MaxNewTokens = options.MaxNewTokens ?? selected.Max(i => tokenizer.Encode(_examples[i].Response!, addBos: false).Count) + 16,
            Temperature = 0,
            StopStrings = multiLine ? [] : ["\n"],
        };
        var prompts = selected.Select(i => GenerationPrompt.Encode(tokenizer, _examples[i].Prompt, model.MaxPositionEmbeddings, generation.MaxNewTokens)).ToArray();
        var generator = new TextGenerator(model, tokenizer);
        var correct = new double[selected.Count];
        long generated = 0;
        var clock = Stopwatch.StartNew();
        for (int start = 0; start < selected.Count; start += options.BatchSize)
        {
            int count = Math.Min(options.BatchSize, selected.Count - start);
            var outputs = generator.GenerateFromIds(prompts.Skip(start).Take(count).Select(p => p.Ids).ToArray(), generation, cancellationToken: cancellationToken);
            for (int j = 0; j < count; j++)
            {
                correct[start + j] = Normalize(outputs[j].Text) == Normalize(_examples[selected[start + j]].Response!) ? 1 : 0;
                generated += outputs[j].TokenIds.Count;
            }
            progress?.Report((start + count, selected.Count));
        }
        double seconds = clock.Elapsed.TotalSeconds;
        var metric = new MetricValue("exact_match", correct.Average(), Bootstrap.Mean(correct, options.BootstrapResamples, options.Seed));
        return new EvalResult(Task, [metric], selected.Count, TemplateId, shots, seconds, seconds > 0 ? generated / seconds : 0,
            TruncatedPrompts: prompts.Count(p => p.Truncated))
        {
            ProtocolVersion = ProtocolVersion,
            Notes = notes,
            Items = selected.Select((index, s) => new ItemOutcome(index, correct[s])).ToArray(),
            Subset = EvalSubset.Describe(_examples.Count, selected.Count, options.Limit, options.LimitSeed),
        };
    }

    /// <summary>
    /// Loads <paramref name="path"/> as a custom task named <c>jsonl:FILE</c>, with its data hash; each skipped line
    /// goes to <paramref name="onSkippedLine"/>.
    /// </summary>
    /// <exception cref="Errors.DataFormatException">The file is missing or has too many malformed lines.</exception>
    public static RecordedEvaluator Create(string path, Action<string>? onSkippedLine = null)
    {
        var data = CustomTaskLoader.Load(path);
        foreach (string message in data.SkippedLines) onSkippedLine?.Invoke(message);
        var notes = data.SkippedLines.Count > 0
            ? new[] { $"{data.SkippedLines.Count} malformed line(s) of {path} skipped (first: {data.SkippedLines[0]})" } : [];
        return new RecordedEvaluator(new CustomTaskEvaluator("jsonl:" + Path.GetFileName(path), data.Examples),
            [DataFileHash.Of("eval", path)], null, notes, data.SkippedLines.Count);
    }
}
