using LoraMixer.Data;
using LoraMixer.Errors;
using LoraMixer.Tokenization;

namespace LoraMixer.Training;

/// <summary>Training records encoded and split into a training and a held-out part.</summary>
public sealed record EncodedData(IReadOnlyList<EncodedExample> Train, IReadOnlyList<EncodedExample> Eval, int Skipped)
{
    /// <summary>
    /// Encodes <paramref name="records"/> (response-only loss for prompt/response records), drops those with
    /// nothing left to learn after truncation, and holds out a deterministic evaluation split.
    /// </summary>
    public static EncodedData Create(ITokenizer tokenizer, IReadOnlyList<TrainingRecord> records, FineTuneSettings settings,
        IReadOnlyList<string>? taskNames = null)
    {
        var encoder = new ExampleEncoder(tokenizer, settings.MaxLength, taskNames);
        var encoded = new List<EncodedExample>(records.Count);
        int skipped = 0;
        foreach (var record in records)
        {
            if (encoder.TryEncode(record, out var example)) encoded.Add(example);
            else skipped++;
        }
        if (encoded.Count == 0)
            throw new DataFormatException($"no usable training examples: all {records.Count} lose their targets at --max-length {settings.MaxLength}");
        int evalCount = (int)Math.Min(settings.MaxEvalExamples, Math.Floor(encoded.Count * settings.EvalFraction));
        if (evalCount == 0) return new EncodedData(encoded, Array.Empty<EncodedExample>(), skipped);
        var (train, eval) = DatasetSplit.Holdout(encoded, evalCount, (int)settings.Trainer.Seed);
        return new EncodedData(train, eval, skipped);
    }
}
