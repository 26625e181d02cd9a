namespace LoraMixer.Quantization;

/// <summary>What <see cref="Int8Quantizer.Quantize"/> did: matrices quantized, their fp32 and int8 (values + scales) bytes.</summary>
public sealed record QuantizationSummary(int Matrices, long Fp32Bytes, long Int8Bytes, int GroupSize)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"int8: {Matrices} weight matrices, {Fp32Bytes / 1e6:F1} MB fp32 -> {Int8Bytes / 1e6:F1} MB int8 (one scale per {GroupSize} inputs)";
}
