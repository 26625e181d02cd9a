using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using LoraMixer.Models.Decoding;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// The decode kernels' product alone: <see cref="DecodeMath.MatMul"/> over ~512 MB of weights (matrices of
/// [--out, --in], 1536 × 576 by default, one call each as a decoding step makes them) for several batch sizes, as
/// GB/s of weights read and GFLOP/s, next to the read bandwidth measured in the same run. One JSON line.
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
            foreach (int batch in batches)
            {
                double best = double.MaxValue;
                for (int r = 0; r <= repeats; r++) // the first pass warms up
                {
                    var sw = Stopwatch.StartNew();
                    for (int m = 0; m < matrices; m++)
                    {
                        one[0] = new Projection((nint)(w + m * matrixFloats), 0, outDim, (nint)y, outDim);
                        DecodeMath.MatMul(one, x, inDim, batch, workers);
                    }
                    if (r > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
                }
                result[$"b{batch}_ms"] = Math.Round(best * 1000, 2);
                result[$"b{batch}_gb_s"] = Math.Round(weightBytes / best / 1e9, 2);
                result[$"b{batch}_gflops"] = Math.Round(2.0 * matrices * matrixFloats * batch / best / 1e9, 1);
            }
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
