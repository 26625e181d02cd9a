using System.Diagnostics.CodeAnalysis;
using LoraMixer.Errors;
using LoraMixer.Tokenization;

namespace LoraMixer.Data;

/// <summary>
/// Turns <see cref="TrainingRecord"/>s into token ids and a loss mask. The prompt is encoded with BOS and the
/// response without, separately, so the boundary between context and targets is exact; EOS follows the
/// response (or the text) so the model learns to stop.
/// </summary>
public sealed class ExampleEncoder
{
    private readonly ITokenizer _tokenizer;
    private readonly Dictionary<string, int>? _taskIndex;
    private readonly IReadOnlyList<string>? _taskNames;
    private readonly int _bosPrefixLength;

    /// <summary>Creates an encoder.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="maxLength">Longest sequence kept (at least 2); longer examples keep their beginning.</param>
    /// <param name="taskNames">Task names in expert order; a record's task becomes its index here. Null: no task ids.</param>
    public ExampleEncoder(ITokenizer tokenizer, int maxLength, IReadOnlyList<string>? taskNames = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        _tokenizer = tokenizer;
        MaxLength = maxLength;
        if (taskNames is not null)
        {
            _taskNames = taskNames;
            _taskIndex = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i < taskNames.Count; i++)
            {
                if (!_taskIndex.TryAdd(taskNames[i], i))
                    throw new ArgumentException($"Task \"{taskNames[i]}\" is listed twice.", nameof(taskNames));
            }
        }
        // Whatever the tokenizer prepends to empty text is its BOS prefix (none, or BOS, per its config).
        _bosPrefixLength = tokenizer.Encode(string.Empty, addBos: true).Count;
    }

    /// <summary>The longest sequence an example keeps.</summary>
    public int MaxLength { get; }

    /// <summary>Encodes <paramref name="record"/>.</summary>
    /// <exception cref="DataFormatException">No target token survives truncation, or the record's task is unknown.</exception>
    public EncodedExample Encode(TrainingRecord record)
    {
        if (TryEncode(record, out var example)) return example;
        if (record.Text is not null)
            throw new DataFormatException($"{record.Location}: the text encodes to no token to train on; give it text the tokenizer can encode.");
        int promptLength = record.Prompt is null ? _bosPrefixLength : _tokenizer.Encode(record.Prompt, addBos: true).Count;
        throw new DataFormatException(
            $"{record.Location}: the prompt is {promptLength} tokens, so no response token fits in the maximum length of {MaxLength}; shorten the prompt or raise the maximum length.");
    }

    /// <summary>
    /// Encodes <paramref name="record"/>; false when truncation to <see cref="MaxLength"/> leaves no target token
    /// (callers that skip such records count them).
    /// </summary>
    /// <exception cref="DataFormatException">The record's task is not one of the encoder's tasks.</exception>
    public bool TryEncode(TrainingRecord record, [NotNullWhen(true)] out EncodedExample? example)
    {
        ArgumentNullException.ThrowIfNull(record);
        int taskIndex = TaskIndexOf(record);
        var ids = new List<int>();
        var mask = new List<bool>();
        if (record.Text is not null)
        {
            ids.AddRange(_tokenizer.Encode(record.Text, addBos: true));
            if (_tokenizer.EosId is int eos) ids.Add(eos);
            for (int i = 0; i < ids.Count; i++) mask.Add(i >= Math.Max(1, _bosPrefixLength));
        }
        else if (record.Response is not null)
        {
            ids.AddRange(_tokenizer.Encode(record.Prompt ?? string.Empty, addBos: true));
            int targetsFrom = ids.Count;
            ids.AddRange(_tokenizer.Encode(record.Response, addBos: false));
            if (_tokenizer.EosId is int eos) ids.Add(eos);
            // Position 0 has no context to be predicted from.
            for (int i = 0; i < ids.Count; i++) mask.Add(i >= Math.Max(1, targetsFrom));
        }
        else
        {
            throw new DataFormatException($"{record.Location}: needs \"response\" (with optional \"prompt\") or \"text\".");
        }

        int length = Math.Min(ids.Count, MaxLength);
        bool anyTarget = false;
        for (int i = 0; i < length; i++) anyTarget |= mask[i];
        if (!anyTarget)
        {
            example = null;
            return false;
        }
        example = new EncodedExample([.. ids.Take(length)], [.. mask.Take(length)], taskIndex, record.Line);
        return true;
    }

    private int TaskIndexOf(TrainingRecord record)
    {
        if (_taskIndex is null || record.Task is null) return -1;
        if (_taskIndex.TryGetValue(record.Task, out int index)) return index;
        throw new DataFormatException(
            $"{record.Location}: unknown task \"{record.Task}\"; known tasks: {string.Join(", ", _taskNames!)}.");
    }
}
