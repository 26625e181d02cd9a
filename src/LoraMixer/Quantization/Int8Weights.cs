namespace LoraMixer.Quantization;

/// <summary>The int8 copies of one model's weights, found by the address of the fp32 weight they were made from.</summary>
internal sealed class Int8Weights(IReadOnlyDictionary<nint, Int8Matrix> matrices)
{
    /// <summary>Every int8 copy.</summary>
    public IReadOnlyCollection<Int8Matrix> Matrices => (IReadOnlyCollection<Int8Matrix>)matrices.Values;

    /// <summary>
    /// The int8 copy of the fp32 weight at <paramref name="weight"/> [rows, columns], or null when there is none or the
    /// weight no longer holds its dequantized values (a LoRA merged into it since): then the kernels read fp32.
    /// </summary>
    public unsafe Int8Matrix? Find(nint weight, int rows, int columns) =>
        matrices.TryGetValue(weight, out var m) && m.Rows == rows && m.Columns == columns && m.Matches((float*)weight) ? m : null;
}
