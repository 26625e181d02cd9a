using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraMixer.Quantization;

/// <summary>
/// A weight [Rows, Columns] in symmetric int8 with one fp32 scale per group of <see cref="GroupSize"/> consecutive
/// columns of a row (the last group of a row may be shorter): w ≈ q · scale, scale = max|w| / 127 over the group
/// (llama.cpp's Q8_0 and bitsandbytes' blockwise int8 work the same way). Groups are multiples of 8 inputs, the
/// kernels' vector width. The arrays are pinned, so the decode kernels read them in place.
/// </summary>
internal sealed unsafe class Int8Matrix
{
    private readonly sbyte[] _values;
    private readonly float[] _scales;

    private Int8Matrix(int rows, int columns, int groupSize)
    {
        (Rows, Columns, GroupSize) = (rows, columns, groupSize);
        GroupsPerRow = (columns + groupSize - 1) / groupSize;
        _values = GC.AllocateUninitializedArray<sbyte>(checked(rows * columns), pinned: true);
        _scales = GC.AllocateUninitializedArray<float>(checked(rows * GroupsPerRow), pinned: true);
    }

    public int Rows { get; }
    public int Columns { get; }
    public int GroupSize { get; }
    public int GroupsPerRow { get; }

    /// <summary>Bytes of the values and the scales.</summary>
    public long Bytes => _values.LongLength + 4L * _scales.LongLength;

    /// <summary>Where the kernels read it.</summary>
    public Int8View View => new((nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_values)),
        (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_scales)), Columns, GroupSize, GroupsPerRow);

    /// <summary>
    /// Quantizes the fp32 weight at <paramref name="weight"/> and overwrites it with the dequantized values q · scale, so
    /// that every path that reads the fp32 weight (prefill, training, the reference modules) computes with exactly the
    /// values the int8 kernels reconstruct.
    /// </summary>
    public static Int8Matrix QuantizeInPlace(float* weight, int rows, int columns, int groupSize)
    {
        if (groupSize < 8 || groupSize % 8 != 0) throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "the group size must be a multiple of 8 (the kernels' vector width)");
        var m = new Int8Matrix(rows, columns, groupSize);
        fixed (sbyte* q = m._values)
        fixed (float* scales = m._scales)
        {
            for (int r = 0; r < rows; r++)
            {
                float* w = weight + (long)r * columns;
                sbyte* qr = q + (long)r * columns;
                for (int g = 0; g < m.GroupsPerRow; g++)
                {
                    int start = g * groupSize, end = Math.Min(columns, start + groupSize);
                    float max = 0;
                    for (int i = start; i < end; i++) max = MathF.Max(max, MathF.Abs(w[i]));
                    float scale = max / 127f;
                    scales[r * m.GroupsPerRow + g] = scale;
                    for (int i = start; i < end; i++)
                    {
                        qr[i] = scale == 0 ? (sbyte)0 : (sbyte)Math.Clamp(MathF.Round(w[i] / scale), -127f, 127f);
                        w[i] = qr[i] * scale;
                    }
                }
            }
        }
        return m;
    }

    /// <summary>Whether the fp32 weight at <paramref name="weight"/> still holds exactly the dequantized values (no LoRA merged into it since).</summary>
    public bool Matches(float* weight)
    {
        var row = new float[Columns];
        var view = View;
        fixed (float* buffer = row)
            for (int r = 0; r < Rows; r++)
            {
                view.DequantizeRows(r, 1, buffer);
                if (!new ReadOnlySpan<float>(buffer, Columns).SequenceEqual(new ReadOnlySpan<float>(weight + (long)r * Columns, Columns))) return false;
            }
        return true;
    }
}

/// <summary>An <see cref="Int8Matrix"/>'s memory as the kernels read it (values [rows, Columns], scales [rows, GroupsPerRow]).</summary>
internal readonly unsafe record struct Int8View(nint Values, nint Scales, int Columns, int GroupSize, int GroupsPerRow)
{
    /// <summary>
    /// Writes rows [r, r + count) as fp32 to <paramref name="destination"/> [count, Columns]: q · scale, the same product
    /// <see cref="Int8Matrix.QuantizeInPlace"/> stored, so a product over them equals one over the dequantized fp32 weight.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void DequantizeRows(int r, int count, float* destination)
    {
        int n = Columns;
        for (int row = 0; row < count; row++)
        {
            sbyte* q = (sbyte*)Values + (long)(r + row) * n;
            float* scales = (float*)Scales + (long)(r + row) * GroupsPerRow;
            float* y = destination + (long)row * n;
            for (int g = 0, start = 0; g < GroupsPerRow; g++, start += GroupSize)
            {
                float scale = scales[g];
                int end = Math.Min(n, start + GroupSize), i = start;
                if (Avx2.IsSupported)
                {
                    var s = Vector256.Create(scale);
                    for (; i <= end - 8; i += 8)
                        Vector256.Store(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + i)) * s, y + i);
                }
                for (; i < end; i++) y[i] = q[i] * scale;
            }
        }
    }
}
