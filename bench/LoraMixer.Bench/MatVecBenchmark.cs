using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using LoraMixer.Models.Decoding;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// The decode kernels' product alone: <see cref="DecodeMath.MatMul"/> over ~512 MB of weights (matrices of
/// [--out, --in], 1536 × 576 by default, one call each as a decoding step makes them) for several batch sizes, as
/// GB/s of weights read and GFLOP/s, next to the read bandwidth measured in the same run. One JSON line. On AVX-512 machines the
/// 256-bit kernel's figures follow with the suffix _avx2, measured in turn with the paired kernel.
/// </summary>
internal static unsafe class MatVecBenchmark
{
    public static int Run(string[] args)
    {
        var options = new BenchArgs(args);
        int inDim = options.Int("in", 576), outDim = options.Int("out", 1536), repeats = options.Int("repeats", 5);
        int threads = options.Int("threads", 0);
        if (threads > 0) set_num_threads(threads);
        int workers = Math.Max(1, get_num_threads());
        int[] batches = options.String("batches", "1,2,4,8,16,32").Split(',').Select(int.Parse).ToArray();
        long matrixFloats = (long)inDim * outDim;
        int matrices = (int)Math.Max(1, (512L << 20) / (matrixFloats * sizeof(float)));
        long weightBytes = matrices * matrixFloats * sizeof(float);
        int maxBatch = batches.Max();
        float* w = (float*)NativeMemory.AlignedAlloc((nuint)weightBytes, 64);
        float* x = (float*)NativeMemory.AlignedAlloc((nuint)((long)maxBatch * inDim * sizeof(float)), 64);
        float* y = (float*)NativeMemory.AlignedAlloc((nuint)((long)maxBatch * outDim * sizeof(float)), 64);
        try
        {
            var random = new Random(0);
            for (long i = 0; i < matrices * matrixFloats; i++) w[i] = (float)(random.NextDouble() - 0.5);
            for (long i = 0; i < (long)maxBatch * inDim; i++) x[i] = (float)(random.NextDouble() - 0.5);
            var result = new Dictionary<string, object>
            {
                ["bench"] = "matvec",
                ["in"] = inDim,
                ["out"] = outDim,
                ["matrices"] = matrices,
                ["weight_mb"] = Math.Round(weightBytes / 1e6, 1),
                ["threads"] = workers,
            };
            Span<Projection> one = stackalloc Projection[1];
            // On AVX-512 machines the 256-bit kernel takes turns with the paired one (suffix _avx2), for the same batches.
            bool paired = DecodeMath.UsePairs;
            var kernels = paired ? new[] { (Pairs: true, Suffix: ""), (Pairs: false, Suffix: "_avx2") } : new[] { (Pairs: false, Suffix: "") };
            foreach (int batch in batches)
            {
                var best = new double[kernels.Length];
                Array.Fill(best, double.MaxValue);
                for (int r = 0; r <= repeats; r++) // the first pass warms up
                    for (int k = 0; k < kernels.Length; k++)
                    {
                        DecodeMath.UsePairs = kernels[k].Pairs;
                        var sw = Stopwatch.StartNew();
                        for (int m = 0; m < matrices; m++)
                        {
                            one[0] = new Projection((nint)(w + m * matrixFloats), 0, outDim, (nint)y, outDim);
                            DecodeMath.MatMul(one, x, inDim, batch, workers);
                        }
                        if (r > 0) best[k] = Math.Min(best[k], sw.Elapsed.TotalSeconds);
                    }
                for (int k = 0; k < kernels.Length; k++)
                {
                    if (batch == 1 && k > 0) continue; // one vector never pairs
                    string suffix = kernels[k].Suffix;
                    result[$"b{batch}_ms{suffix}"] = Math.Round(best[k] * 1000, 2);
                    result[$"b{batch}_gb_s{suffix}"] = Math.Round(weightBytes / best[k] / 1e9, 2);
                    result[$"b{batch}_gflops{suffix}"] = Math.Round(2.0 * matrices * matrixFloats * batch / best[k] / 1e9, 1);
                }
            }
            DecodeMath.UsePairs = paired;
            double bandwidth = Roofs.ReadBandwidthGBs(workers);
            result["read_bandwidth_gb_s"] = Math.Round(bandwidth, 1);
            if (result.TryGetValue("b1_gb_s", out var b1)) result["b1_vs_read_bandwidth"] = Math.Round((double)b1 / bandwidth, 3);
            Console.WriteLine(JsonSerializer.Serialize(result));
            return 0;
        }
        finally
        {
            NativeMemory.AlignedFree(w);
            NativeMemory.AlignedFree(x);
            NativeMemory.AlignedFree(y);
        }
    }
}
