using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// What the machine allows, measured in the same run as the figures they bound: read bandwidth (a streaming
/// sum over 1 GiB split over the threads; also paired with each decode run, <see cref="PairedRoofRatios"/>), fp32
/// matmul GFLOP/s (libtorch, 2048² · 2048²) and libtorch's GFLOP/s on a model's own projection shapes.
/// </summary>
internal static unsafe class Roofs
{
    /// <summary>Best GB/s of a multi-threaded streaming sum over <paramref name="bytes"/> bytes.</summary>
    public static double ReadBandwidthGBs(int threads, long bytes = 1L << 30, int repeats = 5)
    {
        long n = bytes / sizeof(float);
        float* data = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            const int chunk = 1 << 26;
            for (long start = 0; start < n; start += chunk) // touch every page
                new Span<float>(data + start, (int)Math.Min(chunk, n - start)).Fill(1f);
            nint p = (nint)data;
            double best = double.MaxValue;
            var sums = new float[threads];
            for (int r = 0; r < repeats; r++)
            {
                var sw = Stopwatch.StartNew();
                Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                {
                    long lo = n * t / threads / 32 * 32, hi = t == threads - 1 ? n / 32 * 32 : n * (t + 1) / threads / 32 * 32;
                    float* x = (float*)p;
                    Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
                    for (long i = lo; i < hi; i += 32)
                    {
                        s0 += Vector256.Load(x + i);
                        s1 += Vector256.Load(x + i + 8);
                        s2 += Vector256.Load(x + i + 16);
                        s3 += Vector256.Load(x + i + 24);
                    }
                    sums[t] = Vector256.Sum(s0 + s1 + s2 + s3);
                });
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return bytes / best / 1e9;
        }
        finally
        {
            NativeMemory.AlignedFree(data);
        }
    }

    /// <summary>
    /// Decode tokens/s over the memory roof in <paramref name="rounds"/> rounds, each reading the bandwidth (best of 3
    /// passes) just before one <paramref name="decode"/> run, so that each ratio's two parts share the moment; on a
    /// shared machine the bandwidth swings by a third between minutes. Returns the rounds' ratios and their median.
    /// </summary>
    public static (double Median, double[] Rounds) PairedRoofRatios(Func<double> decode, long weightBytes, int rounds = 5)
    {
        var ratios = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            double roof = ReadBandwidthGBs(get_num_threads(), repeats: 3) * 1e9 / weightBytes;
            ratios[r] = Math.Round(decode() / roof, 3);
        }
        var sorted = ratios.Order().ToArray();
        double median = rounds % 2 == 1 ? sorted[rounds / 2] : (sorted[rounds / 2 - 1] + sorted[rounds / 2]) / 2;
        return (median, ratios);
    }

    /// <summary>Best fp32 GFLOP/s of libtorch multiplying two 2048×2048 matrices.</summary>
    public static double MatmulGflops(int repeats = 5)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        const int n = 2048;
        var a = randn(n, n);
        var b = randn(n, n);
        a.matmul(b).Dispose();
        double best = double.MaxValue;
        for (int r = 0; r < repeats; r++)
        {
            var sw = Stopwatch.StartNew();
            a.matmul(b).Dispose();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return 2.0 * n * n * n / best / 1e9;
    }

    /// <summary>
    /// Best fp32 GFLOP/s of libtorch on one layer's projections of the model at <paramref name="tokens"/> tokens
    /// (q, k, v, o, gate, up, down: x [tokens, in] · Wᵀ, each timed apart, the sum of their best times): what the
    /// matrix products of a prefill reach on these shapes with nothing else in between.
    /// </summary>
    public static double LinearGflops(LlamaConfig c, int tokens, int repeats = 5)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        long hidden = c.HiddenSize, q = (long)c.NumAttentionHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim;
        var shapes = new (long In, long Out)[] { (hidden, q), (hidden, kv), (hidden, kv), (q, hidden), (hidden, c.IntermediateSize), (hidden, c.IntermediateSize), (c.IntermediateSize, hidden) };
        double seconds = 0, flops = 0;
        foreach (var (inF, outF) in shapes)
        {
            var x = randn(tokens, inF);
            var w = randn(outF, inF);
            nn.functional.linear(x, w).Dispose();
            double best = double.MaxValue;
            for (int r = 0; r < repeats; r++)
            {
                var sw = Stopwatch.StartNew();
                nn.functional.linear(x, w).Dispose();
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            seconds += best;
            flops += 2.0 * tokens * inF * outF;
        }
        return flops / seconds / 1e9;
    }

    /// <summary>
    /// Weight bytes one decode step reads: every layer's weights, the final norm and the LM head (the embedding
    /// matrix when tied); the input embedding contributes one row.
    /// </summary>
    public static long DecodeWeightBytes(LlamaConfig c)
    {
        long embeddings = (long)c.VocabSize * c.HiddenSize * (c.TieWordEmbeddings ? 1 : 2);
        long perToken = c.ParameterCount() - embeddings + (long)c.VocabSize * c.HiddenSize + c.HiddenSize;
        return perToken * sizeof(float);
    }

    /// <summary>
    /// Weight bytes one Mamba decode step reads: every layer's weights, the final norm and the LM head (the embedding
    /// matrix when tied); the input embedding contributes one row.
    /// </summary>
    public static long DecodeWeightBytes(MambaConfig c)
    {
        long embeddings = (long)c.VocabSize * c.HiddenSize * (c.TieWordEmbeddings ? 1 : 2);
        long perToken = c.ParameterCount() - embeddings + (long)c.VocabSize * c.HiddenSize + c.HiddenSize;
        return perToken * sizeof(float);
    }
}
