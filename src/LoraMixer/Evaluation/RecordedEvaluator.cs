using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// A task's evaluator with the record every result carries: the data files read (SHA-256), where exemplars came
/// from, notes on the data (a partial split) and the count of skipped malformed lines. Built by
/// <see cref="TaskEvaluators.Create"/>.
/// </summary>
public sealed class RecordedEvaluator : ITaskEvaluator
{
    private readonly IReadOnlyList<DataFileHash> _files;
    private readonly string? _exemplarSplit;
    private readonly IReadOnlyList<string> _notes;
    private readonly int _skippedLines;

    /// <summary>Wraps <paramref name="inner"/>; <paramref name="exemplarSplit"/> is null when no exemplar split exists.</summary>
    public RecordedEvaluator(ITaskEvaluator inner, IReadOnlyList<DataFileHash> files, string? exemplarSplit, IReadOnlyList<string> notes, int skippedLines)
    {
        Inner = inner ?? throw new ArgumentNullException(nameof(inner));
        (_files, _exemplarSplit, _notes, _skippedLines) = (files, exemplarSplit, notes, skippedLines);
    }

    /// <summary>The task's own evaluator (e.g. <see cref="HumanEvalEvaluator"/> for scoring completions made elsewhere).</summary>
    public ITaskEvaluator Inner { get; }

    /// <inheritdoc/>
    public string Task => Inner.Task;

    /// <inheritdoc/>
    public int Count => Inner.Count;

    /// <inheritdoc/>
    public int DefaultShots => Inner.DefaultShots;

    /// <summary>The data files read, with their hashes.</summary>
    public IReadOnlyList<DataFileHash> DataFiles => _files;

    /// <inheritdoc/>
    public EvalResult Evaluate(ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default) =>
        Record(Inner.Evaluate(model, tokenizer, options, progress, cancellationToken));

    /// <summary>Adds the data record to a result of <see cref="Inner"/>.</summary>
    public EvalResult Record(EvalResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return result with
        {
            DataFiles = result.Shots > 0 ? _files : _files.Where(f => f.Role != "fewshot").ToArray(),
            ExemplarSplit = result.Shots > 0 && _exemplarSplit is not null ? _exemplarSplit : "none (0-shot)",
            Notes = [.. _notes, .. result.Notes],
            SkippedLines = _skippedLines,
        };
    }
}
