using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraMixer.Models.Decoding;

// The products of DecodeMath.MatMul with two or more vectors on AVX-512 machines: two vectors per 512-bit operation.
// The lower half of an accumulator is vector b's usual 8-float accumulator and the upper half vector b+1's: the weight
// chunk is broadcast to both halves, and the two vectors' chunks sit side by side in an interleaved copy of x. Each
// half then meets exactly the fused multiply-adds, horizontal sum, scalar tail and bias of the 256-bit kernel, so the
// results are bitwise those of OneRow/FourRows/OneVector (batch-independent as before) at half the multiply-add and
// x-load instructions.
internal static unsafe partial class DecodeMath
{
    /// <summary>Whether products with two or more vectors use the paired AVX-512 kernel (tests switch it off to compare).</summary>
    internal static bool UsePairs { get; set; } = Avx512F.IsSupported && Avx512DQ.IsSupported;

    // The calling thread's interleaved copy of x (pinned, grown on demand, 64-byte aligned).
    [ThreadStatic] private static float[]? t_pairBuffer;

    // x [batch, n] as pairs of vectors: for pair q (vectors 2q and 2q+1) and chunk c of 8 floats, 16 floats at
    // (q·chunks + c)·16: the chunk of vector 2q, then the same chunk of vector 2q+1. An odd last vector and the scalar
    // tail (n mod 8) are read from x itself.
    private static float* Interleave(float* x, int n, int batch)
    {
        int chunks = n / 8, pairs = batch / 2;
        int floats = pairs * chunks * 16;
        var buffer = t_pairBuffer;
        if (buffer == null || buffer.Length < floats + 16)
        {
            buffer = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
            t_pairBuffer = buffer;
        }
        float* start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
        float* pairsStart = (float*)(((nint)start + 63) & ~(nint)63);
        for (int q = 0; q < pairs; q++)
        {
            float* a = x + (long)2 * q * n, b = a + n, dst = pairsStart + (long)q * chunks * 16;
            for (int c = 0; c < chunks; c++)
            {
                Vector256.Store(Vector256.Load(a + 8 * c), dst + 16 * c);
                Vector256.Store(Vector256.Load(b + 8 * c), dst + 16 * c + 8);
            }
        }
        return pairsStart;
    }

    // Rows per block of PairedRows when groups of four pairs pass over the rows in turn: a block's weights (64 rows,
    // 147 KB at 576 inputs) stay in the L2 cache while every group passes over them.
    private const int PairedRowBlock = 64;

    // The interleaved vectors one pass over a row may read from the L1 cache (of 48 KB on recent cores).
    private const int PairedL1Bytes = 32 << 10;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PairedRows(in Projection p, float* x, float* pairs, int n, int batch, int r0, int r1)
    {
        int pairCount = batch / 2;
        bool odd = (batch & 1) != 0;
        // Four rows at a time for large batches (compute-bound), and for pairs that do not fit in L1 (8 vectors of 1536
        // inputs): one row at a time would read them all from L2 for every row.
        bool fourRows = batch >= BlockedBatch || (long)pairCount * n * 2 * sizeof(float) > PairedL1Bytes;
        if (!fourRows)
        {
            for (int r = r0; r < r1; r++)
            {
                if (r + 2 < r1) Prefetch((float*)p.Weight + (long)(r + 2) * n, n * sizeof(float));
                OneRowPaired(p, x, pairs, n, 0, pairCount, r);
                if (odd) OneVector(p, x, n, batch - 1, r);
            }
            return;
        }
        for (int block = r0; block < r1; block += PairedRowBlock)
        {
            int blockEnd = Math.Min(r1, block + PairedRowBlock);
            for (int q = 0; q < pairCount; q += 4)
            {
                int qEnd = Math.Min(pairCount, q + 4), r = block;
                for (; r <= blockEnd - 4; r += 4)
                {
                    // The first group's pass brings the block's rows from memory: the next four into the cache meanwhile.
                    if (q == 0 && r + 8 <= blockEnd) Prefetch((float*)p.Weight + (long)(r + 4) * n, 4 * n * sizeof(float));
                    FourRowsPaired(p, x, pairs, n, q, qEnd, r);
                }
                for (; r < blockEnd; r++) OneRowPaired(p, x, pairs, n, q, qEnd, r);
            }
            if (odd)
                for (int r = block; r < blockEnd; r++) OneVector(p, x, n, batch - 1, r);
        }
    }

    // Weight row r with the pairs [q0, q1), four pairs per pass (as OneRow's four vectors).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneRowPaired(in Projection p, float* x, float* pairs, int n, int q0, int q1, int r)
    {
        float* wr = (float*)p.Weight + (long)r * n;
        int chunks = n / 8, vectors = chunks * 8;
        long pairStride = (long)chunks * 16;
        int q = q0;
        for (; q <= q1 - 4; q += 4)
        {
            float* x0 = pairs + q * pairStride, x1 = x0 + pairStride, x2 = x1 + pairStride, x3 = x2 + pairStride;
            var a0 = Vector512<float>.Zero;
            var a1 = Vector512<float>.Zero;
            var a2 = Vector512<float>.Zero;
            var a3 = Vector512<float>.Zero;
            for (int i = 0; i < vectors; i += 8)
            {
                var v = Avx512DQ.BroadcastVector256ToVector512(wr + i);
                a0 = Avx512F.FusedMultiplyAdd(v, Vector512.Load(x0 + 2 * i), a0);
                a1 = Avx512F.FusedMultiplyAdd(v, Vector512.Load(x1 + 2 * i), a1);
                a2 = Avx512F.FusedMultiplyAdd(v, Vector512.Load(x2 + 2 * i), a2);
                a3 = Avx512F.FusedMultiplyAdd(v, Vector512.Load(x3 + 2 * i), a3);
            }
            if (vectors == n)
                StoreColumn(p, r, 2 * q, Sums(a0.GetLower(), a0.GetUpper(), a1.GetLower(), a1.GetUpper(),
                    a2.GetLower(), a2.GetUpper(), a3.GetLower(), a3.GetUpper()));
            else
            {
                StorePair(p, wr, x, n, vectors, r, 2 * q, a0);
                StorePair(p, wr, x, n, vectors, r, 2 * q + 2, a1);
                StorePair(p, wr, x, n, vectors, r, 2 * q + 4, a2);
                StorePair(p, wr, x, n, vectors, r, 2 * q + 6, a3);
            }
        }
        for (; q < q1; q++)
        {
            float* xq = pairs + q * pairStride;
            var a = Vector512<float>.Zero;
            for (int i = 0; i < vectors; i += 8)
                a = Avx512F.FusedMultiplyAdd(Avx512DQ.BroadcastVector256ToVector512(wr + i), Vector512.Load(xq + 2 * i), a);
            StorePair(p, wr, x, n, vectors, r, 2 * q, a);
        }
    }

    // Weight rows r..r+3 with the pairs [q0, q1), four pairs per pass: 16 accumulators, 8 loads per 16 multiply-adds.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourRowsPaired(in Projection p, float* x, float* pairs, int n, int q0, int q1, int r)
    {
        float* w0 = (float*)p.Weight + (long)r * n, w1 = w0 + n, w2 = w1 + n, w3 = w2 + n;
        int chunks = n / 8, vectors = chunks * 8;
        long pairStride = (long)chunks * 16;
        int q = q0;
        for (; q <= q1 - 4; q += 4)
        {
            float* x0 = pairs + q * pairStride, x1 = x0 + pairStride, x2 = x1 + pairStride, x3 = x2 + pairStride;
            Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
            Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
            Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
            Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
            for (int i = 0; i < vectors; i += 8)
            {
                var v0 = Avx512DQ.BroadcastVector256ToVector512(w0 + i);
                var v1 = Avx512DQ.BroadcastVector256ToVector512(w1 + i);
                var v2 = Avx512DQ.BroadcastVector256ToVector512(w2 + i);
                var v3 = Avx512DQ.BroadcastVector256ToVector512(w3 + i);
                var u = Vector512.Load(x0 + 2 * i);
                a00 = Avx512F.FusedMultiplyAdd(v0, u, a00);
                a10 = Avx512F.FusedMultiplyAdd(v1, u, a10);
                a20 = Avx512F.FusedMultiplyAdd(v2, u, a20);
                a30 = Avx512F.FusedMultiplyAdd(v3, u, a30);
                u = Vector512.Load(x1 + 2 * i);
                a01 = Avx512F.FusedMultiplyAdd(v0, u, a01);
                a11 = Avx512F.FusedMultiplyAdd(v1, u, a11);
                a21 = Avx512F.FusedMultiplyAdd(v2, u, a21);
                a31 = Avx512F.FusedMultiplyAdd(v3, u, a31);
                u = Vector512.Load(x2 + 2 * i);
                a02 = Avx512F.FusedMultiplyAdd(v0, u, a02);
                a12 = Avx512F.FusedMultiplyAdd(v1, u, a12);
                a22 = Avx512F.FusedMultiplyAdd(v2, u, a22);
                a32 = Avx512F.FusedMultiplyAdd(v3, u, a32);
                u = Vector512.Load(x3 + 2 * i);
                a03 = Avx512F.FusedMultiplyAdd(v0, u, a03);
                a13 = Avx512F.FusedMultiplyAdd(v1, u, a13);
                a23 = Avx512F.FusedMultiplyAdd(v2, u, a23);
                a33 = Avx512F.FusedMultiplyAdd(v3, u, a33);
            }
            int b = 2 * q;
            if (vectors == n)
            {
                StoreRows(p, r, b, Sums(a00.GetLower(), a10.GetLower(), a20.GetLower(), a30.GetLower(),
                    a00.GetUpper(), a10.GetUpper(), a20.GetUpper(), a30.GetUpper()));
                StoreRows(p, r, b + 2, Sums(a01.GetLower(), a11.GetLower(), a21.GetLower(), a31.GetLower(),
                    a01.GetUpper(), a11.GetUpper(), a21.GetUpper(), a31.GetUpper()));
                StoreRows(p, r, b + 4, Sums(a02.GetLower(), a12.GetLower(), a22.GetLower(), a32.GetLower(),
                    a02.GetUpper(), a12.GetUpper(), a22.GetUpper(), a32.GetUpper()));
                StoreRows(p, r, b + 6, Sums(a03.GetLower(), a13.GetLower(), a23.GetLower(), a33.GetLower(),
                    a03.GetUpper(), a13.GetUpper(), a23.GetUpper(), a33.GetUpper()));
                continue;
            }
            StorePair(p, w0, x, n, vectors, r, b, a00);
            StorePair(p, w0, x, n, vectors, r, b + 2, a01);
            StorePair(p, w0, x, n, vectors, r, b + 4, a02);
            StorePair(p, w0, x, n, vectors, r, b + 6, a03);
            StorePair(p, w1, x, n, vectors, r + 1, b, a10);
            StorePair(p, w1, x, n, vectors, r + 1, b + 2, a11);
            StorePair(p, w1, x, n, vectors, r + 1, b + 4, a12);
            StorePair(p, w1, x, n, vectors, r + 1, b + 6, a13);
            StorePair(p, w2, x, n, vectors, r + 2, b, a20);
            StorePair(p, w2, x, n, vectors, r + 2, b + 2, a21);
            StorePair(p, w2, x, n, vectors, r + 2, b + 4, a22);
            StorePair(p, w2, x, n, vectors, r + 2, b + 6, a23);
            StorePair(p, w3, x, n, vectors, r + 3, b, a30);
            StorePair(p, w3, x, n, vectors, r + 3, b + 2, a31);
            StorePair(p, w3, x, n, vectors, r + 3, b + 4, a32);
            StorePair(p, w3, x, n, vectors, r + 3, b + 6, a33);
        }
        for (; q < q1; q++)
        {
            float* xq = pairs + q * pairStride;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int i = 0; i < vectors; i += 8)
            {
                var u = Vector512.Load(xq + 2 * i);
                a0 = Avx512F.FusedMultiplyAdd(Avx512DQ.BroadcastVector256ToVector512(w0 + i), u, a0);
                a1 = Avx512F.FusedMultiplyAdd(Avx512DQ.BroadcastVector256ToVector512(w1 + i), u, a1);
                a2 = Avx512F.FusedMultiplyAdd(Avx512DQ.BroadcastVector256ToVector512(w2 + i), u, a2);
                a3 = Avx512F.FusedMultiplyAdd(Avx512DQ.BroadcastVector256ToVector512(w3 + i), u, a3);
            }
            StorePair(p, w0, x, n, vectors, r, 2 * q, a0);
            StorePair(p, w1, x, n, vectors, r + 1, 2 * q, a1);
            StorePair(p, w2, x, n, vectors, r + 2, 2 * q, a2);
            StorePair(p, w3, x, n, vectors, r + 3, 2 * q, a3);
        }
    }

    // The horizontal sums of eight 8-float accumulators at once, [Σa, Σb, …, Σh], each added in Vector256.Sum's order,
    // ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)) (DecodeMathTests pins that order), so they equal Finish's sums bitwise.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Sums(Vector256<float> a, Vector256<float> b, Vector256<float> c, Vector256<float> d,
        Vector256<float> e, Vector256<float> f, Vector256<float> g, Vector256<float> h)
    {
        var low = Avx.HorizontalAdd(Avx.HorizontalAdd(a, b), Avx.HorizontalAdd(c, d));   // [a..d first halves | a..d second halves]
        var high = Avx.HorizontalAdd(Avx.HorizontalAdd(e, f), Avx.HorizontalAdd(g, h));
        return Avx.Permute2x128(low, high, 0x20) + Avx.Permute2x128(low, high, 0x31);
    }

    // Sums [y(b, r..r+3) | y(b+1, r..r+3)] (rows without a scalar tail), plus the bias, into the output.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRows(in Projection p, int r, int b, Vector256<float> sums)
    {
        float* bias = (float*)p.Bias;
        float* y = (float*)p.Output + b * p.OutputStride + r;
        Vector128<float> first = sums.GetLower(), second = sums.GetUpper();
        if (bias != null)
        {
            var v = Vector128.Load(bias + r);
            first += v;
            second += v;
        }
        first.Store(y);
        second.Store(y + p.OutputStride);
    }

    // Sums [y(b, r), y(b+1, r), …, y(b+7, r)] (a row without a scalar tail), plus the bias, into the output.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreColumn(in Projection p, int r, int b, Vector256<float> sums)
    {
        float* bias = (float*)p.Bias;
        float add = bias != null ? bias[r] : 0f;
        float* y = (float*)p.Output + b * p.OutputStride + r;
        for (int j = 0; j < 8; j++) y[j * p.OutputStride] = bias != null ? sums.GetElement(j) + add : sums.GetElement(j);
    }

    // Vectors b and b+1 of weight row r from one paired accumulator: each half finished as the 256-bit kernel does.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePair(in Projection p, float* w, float* x, int n, int i, int r, int b, Vector512<float> a)
    {
        Store(p, r, b, Finish(w, x + (long)b * n, n, i, a.GetLower()));
        Store(p, r, b + 1, Finish(w, x + (long)(b + 1) * n, n, i, a.GetUpper()));
    }
}
