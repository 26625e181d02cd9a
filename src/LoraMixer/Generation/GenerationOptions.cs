namespace LoraMixer.Generation;

/// <summary>
/// Decoding settings, named as in Hugging Face <c>generate</c>. Temperature 0 means greedy; top-k 0 and
/// top-p 1 disable those filters.
/// </summary>
public sealed record GenerationOptions
{
    /// <summary>Most new tokens per sequence.</summary>
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>Softmax temperature; 0 picks the most likely token.</summary>
    public double Temperature { get; init; }
    /// <summary>Keep only the k most likely tokens (0: all).</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of tokens whose probability reaches p (1: all).</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Seed of the sampler; the same seed gives the same output.</summary>
    public int Seed { get; init; }
    /// <summary>Generation ends before any of these strings; they are not part of the output.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = Array.Empty<string>();
    /// <summary>Stop at the end-of-sequence token.</summary>
    public bool StopAtEos { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException($"max tokens must be ≥ 0, got {MaxNewTokens}");
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new ArgumentException($"temperature must be ≥ 0, got {Temperature}");
        if (TopK < 0) throw new ArgumentException($"top-k must be ≥ 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}");
        if (StopStrings.Any(string.IsNullOrEmpty)) throw new ArgumentException("stop strings must not be empty");
    }
}
