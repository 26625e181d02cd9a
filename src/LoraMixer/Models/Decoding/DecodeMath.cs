using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoraMixer.Quantization;

namespace LoraMixer.Models.Decoding;

/// <summary>
/// fp32 vector arithmetic of the decode kernel over plain memory: dot products, matrix × few-vectors
/// products split over the cores (each row of a weight read once for every vector of the batch; on AVX-512 machines
/// two vectors per instruction, see DecodeMath.Pairs.cs), RMS norm, SiLU·up and residual adds.
/// </summary>
internal static unsafe partial class DecodeMath
{
    // The kernels' loops carry [AggressiveOptimization]: under tiered compilation they would first run as
    // unoptimised code (every Vector256 operation a call) until the runtime promotes them, which at hundreds of
    // steps per second can be the whole of a short generation (stories260K decoded at 1,260 tok/s instead of ~9,900).
    // Below this many multiply-adds a product runs on the calling thread: a parallel loop costs microseconds.
    private const long ParallelThreshold = 1 << 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary>Σ a[i]·b[i] over n floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(float* a, float* b, int n)
    {
        var s0 = Vector256<float>.Zero;
        var s1 = Vector256<float>.Zero;
        var s2 = Vector256<float>.Zero;
        var s3 = Vector256<float>.Zero;
        int i = 0;
        for (; i <= n - 32; i += 32)
        {
            s0 = MulAdd(Vector256.Load(a + i), Vector256.Load(b + i), s0);
            s1 = MulAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), s1);
            s2 = MulAdd(Vector256.Load(a + i + 16), Vector256.Load(b + i + 16), s2);
            s3 = MulAdd(Vector256.Load(a + i + 24), Vector256.Load(b + i + 24), s3);
        }
        for (; i <= n - 8; i += 8) s0 = MulAdd(Vector256.Load(a + i), Vector256.Load(b + i), s0);
        float s = Vector256.Sum((s0 + s1) + (s2 + s3));
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    /// <summary>y[i] += a · x[i] over n floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddScaled(float* y, float* x, float a, int n)
    {
        var va = Vector256.Create(a);
        int i = 0;
        for (; i <= n - 8; i += 8) Vector256.Store(MulAdd(Vector256.Load(x + i), va, Vector256.Load(y + i)), y + i);
        for (; i < n; i++) y[i] += a * x[i];
    }

    /// <summary>y = w · x / sqrt(mean(x²) + eps) over n floats (HF <c>LlamaRMSNorm</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RmsNorm(float* x, float* w, float* y, int n, float eps)
    {
        float meanSquare = Dot(x, x, n) / n;
        float scale = 1f / MathF.Sqrt(meanSquare + eps);
        var vs = Vector256.Create(scale);
        int i = 0;
        for (; i <= n - 8; i += 8) Vector256.Store(Vector256.Load(w + i) * (Vector256.Load(x + i) * vs), y + i);
        for (; i < n; i++) y[i] = w[i] * (x[i] * scale);
    }

    /// <summary>x[i] += y[i] over n floats (the residual connections).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Add(float* x, float* y, long n)
    {
        long i = 0;
        for (; i <= n - 8; i += 8) Vector256.Store(Vector256.Load(x + i) + Vector256.Load(y + i), x + i);
        for (; i < n; i++) x[i] += y[i];
    }

    /// <summary>
    /// gate = SiLU(gate) · up = gate / (1 + exp(−gate)) · up for <paramref name="rows"/> rows of n floats (HF
    /// <c>LlamaMLP</c>'s <c>act_fn(gate_proj(x)) * up_proj(x)</c>). Each row is taken in chunks of 8 from its start
    /// (exp of a whole vector, <see cref="Vector256.Exp(Vector256{float})"/>) and its tail one by one, so an
    /// element's result depends on its column only, not on the batch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SiluMul(float* gate, float* up, int rows, int n)
    {
        var one = Vector256<float>.One;
        for (int r = 0; r < rows; r++)
        {
            float* g = gate + (long)r * n, u = up + (long)r * n;
            int i = 0;
            for (; i <= n - 8; i += 8)
            {
                var v = Vector256.Load(g + i);
                Vector256.Store(v / (one + Vector256.Exp(-v)) * Vector256.Load(u + i), g + i);
            }
            for (; i < n; i++) g[i] = g[i] / (1f + MathF.Exp(-g[i])) * u[i];
        }
    }

    /// <summary>
    /// Products of several weights [out_j, in] (row-major, optional bias) with the same <paramref name="batch"/>
    /// input vectors x [batch, in]: y_j[b, r] = W_j[r] · x[b] + bias_j[r]. The rows of all weights together are
    /// split into one contiguous range per worker, so fused projections (q/k/v, gate/up) cost one parallel loop
    /// (on <see cref="DecodeParallel"/>'s resident workers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MatMul(ReadOnlySpan<Projection> projections, float* x, int inDim, int batch, int workers)
    {
        long rows = 0;
        bool fp32 = false;
        foreach (var p in projections)
        {
            rows += p.Out;
            fp32 |= p.Int8.Values == 0;
        }
        // The paired products read x interleaved; int8 weights read it as it is.
        float* pairs = batch >= 2 && fp32 && UsePairs ? Interleave(x, inDim, batch) : null;
        if (workers <= 1 || rows * inDim * batch < ParallelThreshold || rows < 8 * workers)
        {
            foreach (var p in projections) Rows(p, x, pairs, inDim, batch, 0, p.Out);
            return;
        }
        var job = projections.ToArray();
        nint xs = (nint)x, ps = (nint)pairs;
        DecodeParallel.For(workers, workers, part =>
        {
            // Global row range of this part, aligned to 4 rows; then the pieces of each projection inside it.
            long start = rows * part / workers / 4 * 4, end = part == workers - 1 ? rows : rows * (part + 1) / workers / 4 * 4;
            long offset = 0;
            foreach (var p in job)
            {
                long lo = Math.Max(start, offset), hi = Math.Min(end, offset + p.Out);
                if (lo < hi) Rows(p, (float*)xs, (float*)ps, inDim, batch, (int)(lo - offset), (int)(hi - offset));
                offset += p.Out;
            }
        });
    }

    // From this many vectors on, Rows multiplies four weight rows at a time (compute, not memory, bounds the product).
    private const int BlockedBatch = 12;

    // Rows [r0, r1) of one projection. Every product y[b, r] sums the same way, whatever the batch: chunks of 8 floats
    // into one accumulator, its horizontal sum, the scalar tail, then the bias; so a row's result does not depend on
    // the batch around it (serving decodes a request in batches of every size and must equal generate).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows(in Projection p, float* x, float* pairs, int n, int batch, int r0, int r1)
    {
        if (p.Int8.Values != 0)
        {
            Int8Rows(p, x, n, batch, r0, r1);
            return;
        }
        if (pairs != null)
        {
            PairedRows(p, x, pairs, n, batch, r0, r1);
            return;
        }
        int r = r0;
        if (batch >= BlockedBatch)
            for (; r <= r1 - 4; r += 4) FourRows(p, x, n, batch, r);
        if (batch == 1)
            for (; r <= r1 - 2; r += 2)
            {
                // The next two rows, into the cache while these two are multiplied.
                if (r + 2 < r1) Prefetch((float*)p.Weight + (long)(r + 2) * n, (Math.Min(r1, r + 4) - (r + 2)) * n * sizeof(float));
                TwoRowsOneVector(p, x, n, r);
            }
        for (; r < r1; r++)
        {
            // The row after next, into the cache while this one is multiplied (5–10% at batches 1–8 in a
            // standalone product benchmark).
            if (r + 2 < r1) Prefetch((float*)p.Weight + (long)(r + 2) * n, n * sizeof(float));
            OneRow(p, x, n, batch, r);
        }
    }

    // Rows of an int8 weight, one at a time with up to four vectors per pass (as OneRow). The int8 values become floats
    // in registers; each group of the row sums its q·x products apart and adds them times its scale:
    // y = Σ_g s_g Σ_{i∈g} q_i x_i (+ the scalar tail, then the bias). Every batch size sums in this order (also the
    // leftover vectors, in Int8OneVector), so results stay batch-independent. Memory traffic is the int8 row and its
    // scales: about a quarter of the fp32 row.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Int8Rows(in Projection p, float* x, int n, int batch, int r0, int r1)
    {
        var int8 = p.Int8;
        int group = int8.GroupSize, vectors = n / 8 * 8;
        for (int r = r0; r < r1; r++)
        {
            sbyte* q = (sbyte*)int8.Values + (long)r * n;
            float* scales = (float*)int8.Scales + (long)r * int8.GroupsPerRow;
            if (r + 2 < r1) Prefetch(q + 2L * n, n);
            int b = 0;
            for (; b <= batch - 4; b += 4)
            {
                float* x0 = x + (long)b * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n;
                var a0 = Vector256<float>.Zero;
                var a1 = Vector256<float>.Zero;
                var a2 = Vector256<float>.Zero;
                var a3 = Vector256<float>.Zero;
                for (int start = 0, g = 0; start < vectors; start += group, g++)
                {
                    var p0 = Vector256<float>.Zero;
                    var p1 = Vector256<float>.Zero;
                    var p2 = Vector256<float>.Zero;
                    var p3 = Vector256<float>.Zero;
                    for (int i = start, end = Math.Min(vectors, start + group); i < end; i += 8)
                    {
                        var v = Int8Vector(q + i);
                        p0 = MulAdd(v, Vector256.Load(x0 + i), p0);
                        p1 = MulAdd(v, Vector256.Load(x1 + i), p1);
                        p2 = MulAdd(v, Vector256.Load(x2 + i), p2);
                        p3 = MulAdd(v, Vector256.Load(x3 + i), p3);
                    }
                    var scale = Vector256.Create(scales[g]);
                    a0 = MulAdd(p0, scale, a0);
                    a1 = MulAdd(p1, scale, a1);
                    a2 = MulAdd(p2, scale, a2);
                    a3 = MulAdd(p3, scale, a3);
                }
                Store(p, r, b, Int8Finish(q, scales, group, x0, n, vectors, a0));
                Store(p, r, b + 1, Int8Finish(q, scales, group, x1, n, vectors, a1));
                Store(p, r, b + 2, Int8Finish(q, scales, group, x2, n, vectors, a2));
                Store(p, r, b + 3, Int8Finish(q, scales, group, x3, n, vectors, a3));
            }
            for (; b < batch; b++) Int8OneVector(p, q, scales, group, x + (long)b * n, n, vectors, b, r);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Int8OneVector(in Projection p, sbyte* q, float* scales, int group, float* xb, int n, int vectors, int b, int r)
    {
        var a = Vector256<float>.Zero;
        for (int start = 0, g = 0; start < vectors; start += group, g++)
        {
            var part = Vector256<float>.Zero;
            for (int i = start, end = Math.Min(vectors, start + group); i < end; i += 8) part = MulAdd(Int8Vector(q + i), Vector256.Load(xb + i), part);
            a = MulAdd(part, Vector256.Create(scales[g]), a);
        }
        Store(p, r, b, Int8Finish(q, scales, group, xb, n, vectors, a));
    }

    // Eight int8 values as floats.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Int8Vector(sbyte* q) =>
        Avx2.IsSupported
            ? Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q))
            : Vector256.Create((float)q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]);

    // The accumulator's horizontal sum, then the scalar tail (dequantized one by one).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Int8Finish(sbyte* q, float* scales, int group, float* x, int n, int i, Vector256<float> a)
    {
        float s = Vector256.Sum(a);
        for (; i < n; i++) s += q[i] * scales[i / group] * x[i];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(void* start, int bytes)
    {
        if (!Sse.IsSupported) return;
        for (int offset = 0; offset < bytes; offset += 64) Sse.Prefetch0((byte*)start + offset);
    }

    // Weight row r with every vector, four vectors per pass: the row is one contiguous stream from memory (four rows
    // read side by side made the hardware prefetcher fall behind; `bench matvec`) and stays in the L1 cache across
    // the passes.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OneRow(in Projection p, float* x, int n, int batch, int r)
    {
        float* wr = (float*)p.Weight + (long)r * n;
        int b = 0;
        for (; b <= batch - 4; b += 4)
        {
            float* x0 = x + (long)b * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n;
            var a0 = Vector256<float>.Zero;
            var a1 = Vector256<float>.Zero;
            var a2 = Vector256<float>.Zero;
            var a3 = Vector256<float>.Zero;
            int i = 0;
            for (; i <= n - 8; i += 8)
            {
                var v = Vector256.Load(wr + i);
                a0 = MulAdd(v, Vector256.Load(x0 + i), a0);
                a1 = MulAdd(v, Vector256.Load(x1 + i), a1);
                a2 = MulAdd(v, Vector256.Load(x2 + i), a2);
                a3 = MulAdd(v, Vector256.Load(x3 + i), a3);
            }
            Store(p, r, b, Finish(wr, x0, n, i, a0));
            Store(p, r, b + 1, Finish(wr, x1, n, i, a1));
            Store(p, r, b + 2, Finish(wr, x2, n, i, a2));
            Store(p, r, b + 3, Finish(wr, x3, n, i, a3));
        }
        for (; b < batch; b++) OneVector(p, x, n, b, r);
    }

    // Weight rows r..r+3 with every vector, two vectors per pass: for large batches (a short prompt's tokens) each
    // load then feeds more multiply-adds.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FourRows(in Projection p, float* x, int n, int batch, int r)
    {
        float* w0 = (float*)p.Weight + (long)r * n, w1 = w0 + n, w2 = w1 + n, w3 = w2 + n;
        int b = 0;
        for (; b <= batch - 2; b += 2)
        {
            float* xa = x + (long)b * n, xc = xa + n;
            var a0 = Vector256<float>.Zero;
            var a1 = Vector256<float>.Zero;
            var a2 = Vector256<float>.Zero;
            var a3 = Vector256<float>.Zero;
            var c0 = Vector256<float>.Zero;
            var c1 = Vector256<float>.Zero;
            var c2 = Vector256<float>.Zero;
            var c3 = Vector256<float>.Zero;
            int i = 0;
            for (; i <= n - 8; i += 8)
            {
                var xv = Vector256.Load(xa + i);
                var xu = Vector256.Load(xc + i);
                var v0 = Vector256.Load(w0 + i);
                var v1 = Vector256.Load(w1 + i);
                var v2 = Vector256.Load(w2 + i);
                var v3 = Vector256.Load(w3 + i);
                a0 = MulAdd(v0, xv, a0);
                a1 = MulAdd(v1, xv, a1);
                a2 = MulAdd(v2, xv, a2);
                a3 = MulAdd(v3, xv, a3);
                c0 = MulAdd(v0, xu, c0);
                c1 = MulAdd(v1, xu, c1);
                c2 = MulAdd(v2, xu, c2);
                c3 = MulAdd(v3, xu, c3);
            }
            Store(p, r, b, Finish(w0, xa, n, i, a0));
            Store(p, r + 1, b, Finish(w1, xa, n, i, a1));
            Store(p, r + 2, b, Finish(w2, xa, n, i, a2));
            Store(p, r + 3, b, Finish(w3, xa, n, i, a3));
            Store(p, r, b + 1, Finish(w0, xc, n, i, c0));
            Store(p, r + 1, b + 1, Finish(w1, xc, n, i, c1));
            Store(p, r + 2, b + 1, Finish(w2, xc, n, i, c2));
            Store(p, r + 3, b + 1, Finish(w3, xc, n, i, c3));
        }
        for (int row = r; b < batch && row < r + 4; row++) OneVector(p, x, n, b, row);
    }

    // Weight rows r and r+1 with the one vector of batch 1: two independent multiply-add chains (one chain is bound by
    // the multiply-add latency to about a row of 8 floats per 4 cycles), each summed exactly as OneVector sums it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TwoRowsOneVector(in Projection p, float* x, int n, int r)
    {
        float* w0 = (float*)p.Weight + (long)r * n, w1 = w0 + n;
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        int i = 0;
        for (; i <= n - 8; i += 8)
        {
            var xv = Vector256.Load(x + i);
            a0 = MulAdd(Vector256.Load(w0 + i), xv, a0);
            a1 = MulAdd(Vector256.Load(w1 + i), xv, a1);
        }
        Store(p, r, 0, Finish(w0, x, n, i, a0));
        Store(p, r + 1, 0, Finish(w1, x, n, i, a1));
    }

    // Weight row r with vector b alone (the vectors left over from the groups above).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OneVector(in Projection p, float* x, int n, int b, int r)
    {
        float* wr = (float*)p.Weight + (long)r * n, xb = x + (long)b * n;
        var a = Vector256<float>.Zero;
        int i = 0;
        for (; i <= n - 8; i += 8) a = MulAdd(Vector256.Load(wr + i), Vector256.Load(xb + i), a);
        Store(p, r, b, Finish(wr, xb, n, i, a));
    }

    // The end of one product from element i: the accumulator's horizontal sum, then the scalar tail.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Finish(float* w, float* x, int n, int i, Vector256<float> a)
    {
        float s = Vector256.Sum(a);
        for (; i < n; i++) s += w[i] * x[i];
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(in Projection p, int r, int b, float value)
    {
        float* bias = (float*)p.Bias;
        ((float*)p.Output)[b * p.OutputStride + r] = bias != null ? value + bias[r] : value;
    }
}

/// <summary>One weight [Out, in] (and bias) of a <see cref="DecodeMath.MatMul"/> call and where its outputs go.</summary>
/// <param name="Weight">Row-major fp32 weight (with <paramref name="Int8"/>: the dequantized one, not read).</param>
/// <param name="Bias">fp32 bias [Out], or zero.</param>
/// <param name="Out">Rows of the weight.</param>
/// <param name="Output">Output [batch, OutputStride]; row b receives its Out values at its start.</param>
/// <param name="OutputStride">Floats between consecutive batch rows of the output.</param>
/// <param name="Int8">The weight's int8 copy the product reads instead (<c>--quantize int8</c>), or default.</param>
internal readonly record struct Projection(nint Weight, nint Bias, int Out, nint Output, long OutputStride, Int8View Int8 = default);
