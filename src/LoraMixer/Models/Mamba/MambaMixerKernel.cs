using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LoraMixer.Models.Mamba;

/// <summary>
/// The inference-only core of <see cref="MambaMixer"/> over plain fp32 memory, for multi-token passes on the CPU
/// without gradients: the causal depthwise convolution with its SiLU, and the selective scan fused with the D skip
/// and the SiLU(z) gate. Everything stays time-major ([B, T, D], as the projections produce and consume it), so the
/// TorchSharp path's transposes and per-chunk tensors disappear. The scan runs sequentially in T over blocks of
/// eight channels (one vector lane per channel, the N states in registers; sixteen with AVX-512), the blocks split
/// over the cores.
/// <see cref="SelectiveScan"/> stays the reference and the differentiable path.
/// </summary>
internal static unsafe class MambaMixerKernel
{
    /// <summary>Channels per vector: the kernel needs d_inner to be a multiple of it.</summary>
    public const int Lanes = 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary>SiLU: v · sigmoid(v).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Silu(Vector256<float> v) => v / (Vector256<float>.One + Exp(-v));

    /// <summary>
    /// e^x in float32 (Cephes <c>expf</c>: x = k ln 2 + r, a degree-6 polynomial in r, 2^k from the exponent bits),
    /// within 2 ulp of the exact value on [−87.3, 88], x clamped to that range (so e^−1000 gives 1.2·10⁻³⁸, not 0).
    /// Float-only arithmetic, for the scan's inner loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(-87.33654f)), Vector256.Create(88f));
        var k = Vector256.Floor(MulAdd(x, Vector256.Create(1.44269504088896341f), Vector256.Create(0.5f)));
        var r = MulAdd(k, Vector256.Create(-0.693359375f), x);
        r = MulAdd(k, Vector256.Create(2.12194440e-4f), r);
        var p = Vector256.Create(1.9875691500e-4f);
        p = MulAdd(p, r, Vector256.Create(1.3981999507e-3f));
        p = MulAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = MulAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = MulAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = MulAdd(p, r, Vector256.Create(5.0000001201e-1f));
        p = MulAdd(p * r, r, r) + Vector256<float>.One;
        var scale = Vector256.ShiftLeft(Vector256.ConvertToInt32(k) + Vector256.Create(127), 23).AsSingle();
        return p * scale;
    }

    /// <summary>
    /// Whether <see cref="Scan"/> takes 16 channels per 512-bit vector (AVX-512 machines, d_inner a multiple of 16).
    /// Every lane meets the same operations as in the 256-bit blocks, so both give bitwise the same results (tests
    /// switch it off to compare).
    /// </summary>
    internal static bool UseWide { get; set; } = Avx512F.IsSupported && Fma.IsSupported;

    /// <summary><see cref="Exp(Vector256{float})"/> on 16 lanes: the same operations lane by lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-87.33654f)), Vector512.Create(88f));
        var k = Vector512.Floor(Avx512F.FusedMultiplyAdd(x, Vector512.Create(1.44269504088896341f), Vector512.Create(0.5f)));
        var r = Avx512F.FusedMultiplyAdd(k, Vector512.Create(-0.693359375f), x);
        r = Avx512F.FusedMultiplyAdd(k, Vector512.Create(2.12194440e-4f), r);
        var p = Vector512.Create(1.9875691500e-4f);
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(1.3981999507e-3f));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        p = Avx512F.FusedMultiplyAdd(p * r, r, r) + Vector512<float>.One;
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32(k) + Vector512.Create(127), 23).AsSingle();
        return p * scale;
    }

    /// <summary>HF softplus (β = 1, threshold 20): v above 20, else log(1 + e^v).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Softplus(Vector256<float> v) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(v, Vector256.Create(20f)), v, Vector256.Log(Vector256<float>.One + Exp(v)));

    /// <summary>v[i] = softplus(v[i]) over <paramref name="count"/> floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SoftplusInPlace(float* v, long count)
    {
        long i = 0;
        for (; i <= count - Lanes; i += Lanes) Vector256.Store(Softplus(Vector256.Load(v + i)), v + i);
        for (; i < count; i++) v[i] = v[i] > 20f ? v[i] : MathF.Log(1f + MathF.Exp(v[i]));
    }

    /// <summary>v[i] = SiLU(v[i]) over <paramref name="count"/> floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SiluInPlace(float* v, long count)
    {
        long i = 0;
        for (; i <= count - Lanes; i += Lanes) Vector256.Store(Silu(Vector256.Load(v + i)), v + i);
        for (; i < count; i++) v[i] /= 1f + MathF.Exp(-v[i]);
    }

    /// <summary>y[i] ·= SiLU(z[i]) over <paramref name="count"/> floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GateInPlace(float* y, float* z, long count)
    {
        long i = 0;
        for (; i <= count - Lanes; i += Lanes) Vector256.Store(Vector256.Load(y + i) * Silu(Vector256.Load(z + i)), y + i);
        for (; i < count; i++) y[i] *= z[i] / (1f + MathF.Exp(-z[i]));
    }

    /// <summary>
    /// output[b, t, d] = SiLU(bias[d] + Σ_j weight[j, d] · in[b, t − (K−1) + j, d]) · m[b, t], where in is
    /// x[b, t, d] · m[b, t] (x rows <paramref name="xStride"/> floats apart) and, before t = 0, the
    /// <paramref name="convState"/> [B, D, K−1] (zeros when null). The state, when given, receives the last K−1
    /// inputs in place. <paramref name="weight"/> is [K, D] (the conv weight transposed); mask [B, T] or null.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Convolve(float* x, long xStride, float* mask, float* convState, float* weight, float* bias, float* output,
        int batch, int time, int inner, int kernel, int workers)
    {
        int past = kernel - 1;
        nint xs = (nint)x, ms = (nint)mask, ss = (nint)convState, ws = (nint)weight, bs = (nint)bias, os = (nint)output;
        // Work item: one (row, range of 32 positions), walked position by position along the rows of x (contiguous
        // reads); small items balance the cores when another process takes one.
        int parts = (time + 31) / 32;
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Part(int job)
        {
            int b = job / parts, part = job % parts;
            int t0 = (int)((long)time * part / parts), t1 = (int)((long)time * (part + 1) / parts);
            float* xb = (float*)xs + b * time * xStride, mb = ms == 0 ? null : (float*)ms + (long)b * time;
            float* sb = ss == 0 ? null : (float*)ss + (long)b * inner * past;
            float* w = (float*)ws, bias0 = (float*)bs;
            float* window = stackalloc float[past * Lanes];
            for (int t = t0; t < t1; t++)
            {
                for (int d0 = 0; d0 < inner; d0 += Lanes)
                {
                    var acc = bias0 == null ? Vector256<float>.Zero : Vector256.Load(bias0 + d0);
                    for (int j = 0; j < kernel; j++)
                    {
                        int s = t - past + j;
                        Vector256<float> input;
                        if (s >= 0)
                        {
                            input = Vector256.Load(xb + s * xStride + d0);
                            if (mb != null) input *= Vector256.Create(mb[s]);
                        }
                        else if (sb != null)
                        {
                            for (int l = 0; l < Lanes; l++) window[l] = sb[(long)(d0 + l) * past + (s + past)];
                            input = Vector256.Load(window);
                        }
                        else continue;
                        acc = MulAdd(Vector256.Load(w + (long)j * inner + d0), input, acc);
                    }
                    var y = Silu(acc);
                    if (mb != null) y *= Vector256.Create(mb[t]);
                    Vector256.Store(y, (float*)os + ((long)b * time + t) * inner + d0);
                }
            }
        }
        int jobs = batch * parts;
        if (workers > 1 && jobs > 1) Parallel.For(0, jobs, new ParallelOptions { MaxDegreeOfParallelism = workers }, Part);
        else for (int j = 0; j < jobs; j++) Part(j);

        if (convState == null) return;
        // The new state: the last K−1 (masked) inputs, reaching into the old state when T < K−1.
        var next = new float[past];
        for (int b = 0; b < batch; b++)
        {
            float* xb = x + b * time * xStride, mb = mask == null ? null : mask + (long)b * time, sb = convState + (long)b * inner * past;
            for (int d = 0; d < inner; d++)
            {
                for (int j = 0; j < past; j++)
                {
                    int s = time - past + j;
                    next[j] = s >= 0 ? xb[s * xStride + d] * (mb == null ? 1f : mb[s]) : sb[(long)d * past + s + past];
                }
                for (int j = 0; j < past; j++) sb[(long)d * past + j] = next[j];
            }
        }
    }

    /// <summary>
    /// The selective scan with the D skip and the gate: per row b and channel d, from h = state[b, d] (zeros when
    /// null), for t = 0..T−1: <c>h = exp(Δ A[d]) ⊙ h + Δ u B_t</c>, <c>y[b, t, d] = (C_t · h + D[d] u) · SiLU(z[b, t, d])</c>
    /// with Δ = delta[b, t, d] and u = u[b, t, d] ([B, T, D]); B_t and C_t are rows <paramref name="bcStride"/> floats
    /// apart (one per (b, t)), z rows <paramref name="zStride"/> apart. <paramref name="aTransposed"/> is A [N, D].
    /// The final state is written back into <paramref name="state"/> when given.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scan(float* u, float* delta, float* aTransposed, float* bRows, float* cRows, long bcStride, float* dSkip,
        float* z, long zStride, float* state, float* y, int batch, int time, int inner, int stateSize, int workers)
    {
        int blocks = inner / Lanes;
        nint us = (nint)u, ds = (nint)delta, a = (nint)aTransposed, bs = (nint)bRows, cs = (nint)cRows, dk = (nint)dSkip, zs = (nint)z, hs = (nint)state, ys = (nint)y;
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Block(int job)
        {
            int b = job / blocks, d0 = job % blocks * Lanes, n = stateSize;
            var h = stackalloc Vector256<float>[n];
            var aBlock = stackalloc Vector256<float>[n];
            float* st = hs == 0 ? null : (float*)hs + ((long)b * inner + d0) * n;
            for (int i = 0; i < n; i++)
            {
                aBlock[i] = Vector256.Load((float*)a + (long)i * inner + d0);
                h[i] = Vector256<float>.Zero;
                if (st != null)
                    h[i] = Vector256.Create(st[i], st[n + i], st[2 * n + i], st[3 * n + i], st[4 * n + i], st[5 * n + i], st[6 * n + i], st[7 * n + i]);
            }
            var skip = Vector256.Load((float*)dk + d0);
            for (int t = 0; t < time; t++)
            {
                long row = (long)b * time + t;
                long at = row * inner + d0;
                var dt = Vector256.Load((float*)ds + at);
                var uv = Vector256.Load((float*)us + at);
                var dtu = dt * uv;
                float* bt = (float*)bs + row * bcStride, ct = (float*)cs + row * bcStride;
                var acc = Vector256<float>.Zero;
                for (int i = 0; i < n; i++)
                {
                    var hi = MulAdd(Exp(dt * aBlock[i]), h[i], dtu * Vector256.Create(bt[i]));
                    h[i] = hi;
                    acc = MulAdd(hi, Vector256.Create(ct[i]), acc);
                }
                var gate = Silu(Vector256.Load((float*)zs + row * zStride + d0));
                Vector256.Store(MulAdd(uv, skip, acc) * gate, (float*)ys + at);
            }
            if (st != null)
                for (int i = 0; i < n; i++)
                    for (int l = 0; l < Lanes; l++) st[(long)l * n + i] = h[i].GetElement(l);
        }
        // AVX-512: 16 channels per vector, half the instructions of the exp-bound inner loop.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void WideBlock(int job)
        {
            const int wide = 2 * Lanes;
            int wideBlocks = inner / wide;
            int b = job / wideBlocks, d0 = job % wideBlocks * wide, n = stateSize;
            var h = stackalloc Vector512<float>[n];
            var aBlock = stackalloc Vector512<float>[n];
            float* st = hs == 0 ? null : (float*)hs + ((long)b * inner + d0) * n;
            var lanes = stackalloc float[wide];
            for (int i = 0; i < n; i++)
            {
                aBlock[i] = Vector512.Load((float*)a + (long)i * inner + d0);
                if (st != null) for (int l = 0; l < wide; l++) lanes[l] = st[(long)l * n + i];
                h[i] = st != null ? Vector512.Load(lanes) : Vector512<float>.Zero;
            }
            var skip = Vector512.Load((float*)dk + d0);
            for (int t = 0; t < time; t++)
            {
                long row = (long)b * time + t;
                long at = row * inner + d0;
                var dt = Vector512.Load((float*)ds + at);
                var uv = Vector512.Load((float*)us + at);
                var dtu = dt * uv;
                float* bt = (float*)bs + row * bcStride, ct = (float*)cs + row * bcStride;
                var acc = Vector512<float>.Zero;
                for (int i = 0; i < n; i++)
                {
                    var hi = Avx512F.FusedMultiplyAdd(Exp(dt * aBlock[i]), h[i], dtu * Vector512.Create(bt[i]));
                    h[i] = hi;
                    acc = Avx512F.FusedMultiplyAdd(hi, Vector512.Create(ct[i]), acc);
                }
                var z = Vector512.Load((float*)zs + row * zStride + d0);
                var gate = z / (Vector512<float>.One + Exp(-z));
                Vector512.Store(Avx512F.FusedMultiplyAdd(uv, skip, acc) * gate, (float*)ys + at);
            }
            if (st != null)
                for (int i = 0; i < n; i++)
                {
                    h[i].Store(lanes);
                    for (int l = 0; l < wide; l++) st[(long)l * n + i] = lanes[l];
                }
        }
        bool useWide = UseWide && inner % (2 * Lanes) == 0;
        int jobs = batch * (useWide ? inner / (2 * Lanes) : blocks);
        Action<int> body = useWide ? WideBlock : Block;
        if (workers > 1 && jobs > 1) Parallel.For(0, jobs, new ParallelOptions { MaxDegreeOfParallelism = workers }, body);
        else for (int j = 0; j < jobs; j++) body(j);
    }
}
