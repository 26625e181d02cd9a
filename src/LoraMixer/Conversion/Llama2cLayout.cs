namespace LoraMixer.Conversion;

/// <summary>
/// Where each weight block of a llama2.c checkpoint starts, in floats after the header; per-layer blocks
/// hold all layers back to back. <see cref="Classifier"/> is -1 when the classifier is shared.
/// </summary>
internal sealed record Llama2cLayout(
    long TokenEmbedding, long RmsAttention, long Wq, long Wk, long Wv, long Wo, long RmsFfn,
    long W1, long W2, long W3, long RmsFinal, long FreqCis, long Classifier, long TotalFloats)
{
    /// <summary>The exact file size the header implies.</summary>
    public long TotalBytes { get; init; }
}
