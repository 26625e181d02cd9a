using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraMixer.Models.Decoding;

/// <summary>
/// fp32 vector arithmetic of the decode kernel over plain memory: dot products, matrix × few-vectors
/// products split over the cores (rows of a weight read once for every vector of the batch), RMS norm.
/// </summary>
internal static unsafe class DecodeMath
{
    // The kernels' loops carry [AggressiveOptimization]: under tiered compilation they would first run as
    // unoptimised code (every Vector256 operation a call) until the runtime promotes them, which at hundreds of
    // steps per second can be the whole of a short generation (stories260K decoded at 1,260 tok/s instead of ~9,900).
    // Below this many multiply-adds a product runs on the calling thread: a parallel loop costs microseconds.
    private const long ParallelThreshold = 1 << 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
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
        for (int i = 0; i < n; i++) y[i] = w[i] * (x[i] * scale);
    }

    /// <summary>
    /// Products of several weights [out_j, in] (row-major, optional bias) with the same <paramref name="batch"/>
    /// input vectors x [batch, in]: y_j[b, r] = W_j[r] · x[b] + bias_j[r]. The rows of all weights together are
    /// split into one contiguous range per worker, so fused projections (q/k/v, gate/up) cost one parallel loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MatMul(ReadOnlySpan<Projection> projections, float* x, int inDim, int batch, int workers)
    {
        long rows = 0;
        foreach (var p in projections) rows += p.Out;
        if (workers <= 1 || rows * inDim * batch < ParallelThreshold || rows < 8 * workers)
        {
            foreach (var p in projections) Rows(p, x, inDim, batch, 0, p.Out);
            return;
        }
        var job = projections.ToArray();
        nint xs = (nint)x;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, part =>
        {
            // Global row range of this part, aligned to 4 rows; then the pieces of each projection inside it.
            long start = rows * part / workers / 4 * 4, end = part == workers - 1 ? rows : rows * (part + 1) / workers / 4 * 4;
            long offset = 0;
            foreach (var p in job)
            {
                long lo = Math.Max(start, offset), hi = Math.Min(end, offset + p.Out);
                if (lo < hi) Rows(p, (float*)xs, inDim, batch, (int)(lo - offset), (int)(hi - offset));
                offset += p.Out;
            }
        });
    }

    // Rows [r0, r1) of one projection, four rows at a time so that each load of x feeds four products, and two
    // vectors of the batch at a time so that each load of a weight row feeds two. Every product keeps its own
    // accumulator over the same order of elements, so a row's result does not depend on the batch around it.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows(in Projection p, float* x, int n, int batch, int r0, int r1)
    {
        float* w = (float*)p.Weight, bias = (float*)p.Bias, y = (float*)p.Output;
        int r = r0;
        for (; r <= r1 - 4; r += 4)
        {
            float* w0 = w + (long)r * n, w1 = w0 + n, w2 = w1 + n, w3 = w2 + n;
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
                Finish(p, w0, xa, n, i, b, r, a0, a1, a2, a3);
                Finish(p, w0, xc, n, i, b + 1, r, c0, c1, c2, c3);
            }
            for (; b < batch; b++)
            {
                float* xb = x + (long)b * n;
                var s0 = Vector256<float>.Zero;
                var s1 = Vector256<float>.Zero;
                var s2 = Vector256<float>.Zero;
                var s3 = Vector256<float>.Zero;
                int i = 0;
                for (; i <= n - 8; i += 8)
                {
                    var xv = Vector256.Load(xb + i);
                    s0 = MulAdd(Vector256.Load(w0 + i), xv, s0);
                    s1 = MulAdd(Vector256.Load(w1 + i), xv, s1);
                    s2 = MulAdd(Vector256.Load(w2 + i), xv, s2);
                    s3 = MulAdd(Vector256.Load(w3 + i), xv, s3);
                }
                Finish(p, w0, xb, n, i, b, r, s0, s1, s2, s3);
            }
        }
        for (; r < r1; r++)
        {
            float* wr = w + (long)r * n;
            for (int b = 0; b < batch; b++)
                y[(long)b * p.OutputStride + r] = Dot(wr, x + (long)b * n, n) + (bias != null ? bias[r] : 0f);
        }
    }

    // The four sums of rows r..r+3 with vector xb (rows of n floats from w0): horizontal sums, the tail from element i, bias.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(in Projection p, float* w0, float* xb, int n, int i, int b, int r,
        Vector256<float> s0, Vector256<float> s1, Vector256<float> s2, Vector256<float> s3)
    {
        float* w1 = w0 + n, w2 = w1 + n, w3 = w2 + n, bias = (float*)p.Bias;
        float d0 = Vector256.Sum(s0), d1 = Vector256.Sum(s1), d2 = Vector256.Sum(s2), d3 = Vector256.Sum(s3);
        for (; i < n; i++)
        {
            d0 += w0[i] * xb[i];
            d1 += w1[i] * xb[i];
            d2 += w2[i] * xb[i];
            d3 += w3[i] * xb[i];
        }
        float* yb = (float*)p.Output + (long)b * p.OutputStride + r;
        if (bias != null) { d0 += bias[r]; d1 += bias[r + 1]; d2 += bias[r + 2]; d3 += bias[r + 3]; }
        yb[0] = d0; yb[1] = d1; yb[2] = d2; yb[3] = d3;
    }
}

/// <summary>One weight [Out, in] (and bias) of a <see cref="DecodeMath.MatMul"/> call and where its outputs go.</summary>
/// <param name="Weight">Row-major fp32 weight.</param>
/// <param name="Bias">fp32 bias [Out], or zero.</param>
/// <param name="Out">Rows of the weight.</param>
/// <param name="Output">Output [batch, OutputStride]; row b receives its Out values at its start.</param>
/// <param name="OutputStride">Floats between consecutive batch rows of the output.</param>
internal readonly record struct Projection(nint Weight, nint Bias, int Out, nint Output, long OutputStride);
