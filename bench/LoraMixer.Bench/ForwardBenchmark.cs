using System.Diagnostics;
using System.Text.Json;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// Base-model speed: prefill tokens/s at 128 and 512 tokens, decode tokens/s for 1 and 8 sequences (the decode
/// kernel, and batch 1 also through the TorchSharp modules), achieved GFLOP/s in prefill, peak RSS and RSS growth
/// over a long decode loop; with the roofs measured in the same run (read bandwidth, matmul GFLOP/s, and libtorch's
/// GFLOP/s on the model's own projection shapes at 512 tokens) and the ratios of issue 13: decode vs the memory roof
/// (bandwidth / weight bytes per token; also paired round by round), prefill vs the matmul roof, batch 8 vs batch 1.
/// One JSON line.
/// </summary>
internal static class ForwardBenchmark
{
    public static int Run(string[] args)
    {
        var options = new BenchArgs(args);
        string dir = options.Required("model");
        int repeats = options.Int("repeats", 3);
        int threads = options.Int("threads", 0);
        if (threads > 0) set_num_threads(threads);

        using var model = LlamaLoader.Load(dir);
        var config = model.Config;
        using var noGrad = no_grad();
        var random = new Random(0);

        double Prefill(int tokens)
        {
            tokens = Math.Min(tokens, config.MaxPositionEmbeddings);
            var ids = Enumerable.Range(0, tokens).Select(_ => (long)random.Next(config.VocabSize)).ToArray();
            double best = double.MaxValue;
            for (int r = 0; r <= repeats; r++) // first run warms up
            {
                using var scope = NewDisposeScope();
                var sw = Stopwatch.StartNew();
                model.Forward(tensor(ids, new long[] { 1, tokens }), lastPositionOnly: true);
                if (r > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return tokens / best;
        }

        double Decode(int batch, int prompt, int steps, bool kernel = true)
        {
            model.UseDecodeKernel = kernel;
            steps = Math.Min(steps, config.MaxPositionEmbeddings - prompt);
            using var cache = model.CreateCache(batch, prompt + steps);
            using (var scope = NewDisposeScope())
                model.Forward(randint(config.VocabSize, new long[] { batch, prompt }), cache: cache, lastPositionOnly: true);
            var sw = Stopwatch.StartNew();
            for (int s = 0; s < steps; s++)
            {
                using var scope = NewDisposeScope();
                model.Forward(randint(config.VocabSize, new long[] { batch, 1 }), cache: cache, lastPositionOnly: true);
            }
            double rate = batch * steps / sw.Elapsed.TotalSeconds;
            model.UseDecodeKernel = true;
            return rate;
        }

        // A short prompt prefilled into a cache, as generate and serve do: the kernel's prefill (rows on one sequence)
        // against the TorchSharp modules.
        double ShortPrefill(int tokens, bool kernel)
        {
            model.UseDecodeKernel = kernel;
            var ids = Enumerable.Range(0, tokens).Select(_ => (long)random.Next(config.VocabSize)).ToArray();
            double best = double.MaxValue;
            for (int r = 0; r <= repeats; r++)
            {
                using var scope = NewDisposeScope();
                using var cache = model.CreateCache(1, tokens + 1);
                var sw = Stopwatch.StartNew();
                model.Forward(tensor(ids, new long[] { 1, tokens }), cache: cache, lastPositionOnly: true);
                if (r > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            model.UseDecodeKernel = true;
            return tokens / best;
        }

        double BestDecode(int batch, bool kernel = true)
        {
            double best = 0;
            for (int r = 0; r < Math.Max(1, repeats); r++) best = Math.Max(best, Decode(batch, 16, 128, kernel));
            return best;
        }

        double prefill128 = Prefill(128);
        double prefill512 = Prefill(512);
        Decode(1, 16, 16); // warm-up (JIT, thread pool)
        double decode1 = BestDecode(1);
        double decode8 = BestDecode(8);
        double decode1Reference = BestDecode(1, kernel: false);
        int shortTokens = Math.Min(options.Int("short", 32), config.MaxPositionEmbeddings - 1);
        double shortKernel = ShortPrefill(shortTokens, kernel: true), shortReference = ShortPrefill(shortTokens, kernel: false);
        long kernelSteps = model.DecodeKernelSteps;
        double bandwidth = Roofs.ReadBandwidthGBs(get_num_threads());
        double matmulGflops = Roofs.MatmulGflops();
        int t512 = Math.Min(512, config.MaxPositionEmbeddings);
        double linearGflops = Roofs.LinearGflops(config, t512);
        long weightBytes = Roofs.DecodeWeightBytes(config);
        double memoryRoof = bandwidth * 1e9 / weightBytes;
        var paired = Roofs.PairedRoofRatios(() => Decode(1, 16, 128), weightBytes);

        // Steady memory: RSS after a long decode loop compared with after a short one.
        Decode(1, 16, 32);
        double rssBefore = ProcessMemory.CurrentRssMb();
        for (int i = 0; i < 5; i++) Decode(1, 16, 200);
        double rssAfter = ProcessMemory.CurrentRssMb();

        double flopsPerPrefill = FlopsPerSequence(config, t512);
        double prefillGflops = flopsPerPrefill * prefill512 / t512 / 1e9;
        var result = new Dictionary<string, object>
        {
            ["bench"] = "forward",
            ["model"] = Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')),
            ["parameters"] = config.ParameterCount(),
            ["threads"] = get_num_threads(),
            ["prefill_tokens"] = new[] { Math.Min(128, config.MaxPositionEmbeddings), t512 },
            ["prefill_128_tok_s"] = Math.Round(prefill128, 1),
            ["prefill_512_tok_s"] = Math.Round(prefill512, 1),
            ["decode_b1_tok_s"] = Math.Round(decode1, 1),
            ["decode_b8_tok_s"] = Math.Round(decode8, 1),
            ["decode_b1_torchsharp_tok_s"] = Math.Round(decode1Reference, 1),
            ["decode_kernel_steps"] = kernelSteps,
            ["prefill_512_gflops"] = Math.Round(prefillGflops, 2),
            ["read_bandwidth_gb_s"] = Math.Round(bandwidth, 1),
            ["matmul_gflops"] = Math.Round(matmulGflops, 1),
            ["linear_512_gflops"] = Math.Round(linearGflops, 1),
            ["decode_weight_mb_per_token"] = Math.Round(weightBytes / 1e6, 1),
            ["memory_roof_tok_s"] = Math.Round(memoryRoof, 1),
            ["decode_b1_vs_memory_roof"] = Math.Round(decode1 / memoryRoof, 3),
            ["decode_b1_vs_memory_roof_paired"] = Math.Round(paired.Median, 3),
            ["decode_b1_vs_memory_roof_paired_rounds"] = paired.Rounds,
            ["decode_b8_vs_b1"] = Math.Round(decode8 / decode1, 2),
            ["decode_b1_kernel_vs_torchsharp"] = Math.Round(decode1 / decode1Reference, 2),
            ["short_prefill_tokens"] = shortTokens,
            ["short_prefill_kernel_tok_s"] = Math.Round(shortKernel, 1),
            ["short_prefill_torchsharp_tok_s"] = Math.Round(shortReference, 1),
            ["prefill_512_vs_matmul_roof"] = Math.Round(prefillGflops / matmulGflops, 3),
            ["prefill_512_vs_linear_roof"] = Math.Round(prefillGflops / linearGflops, 3),
            ["peak_rss_mb"] = Math.Round(ProcessMemory.PeakRssMb(), 1),
            ["rss_growth_mb_over_1000_decode_steps"] = Math.Round(rssAfter - rssBefore, 1),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>
    /// Multiply-adds ×2 of one prefill of t tokens as the benchmark runs it (logits of the last position only):
    /// every layer's projections and MLP for each token, the attention scores and their weighted sums over the causal
    /// half, and the LM head once.
    /// </summary>
    private static double FlopsPerSequence(LlamaConfig c, int t)
    {
        double q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim;
        double perTokenLayer = c.HiddenSize * (2 * q + 2 * kv) + 3.0 * c.HiddenSize * c.IntermediateSize;
        double linear = 2 * (t * c.NumHiddenLayers * perTokenLayer + (double)c.HiddenSize * c.VocabSize);
        double attention = 2 * c.NumHiddenLayers * 2.0 * q * t * (t + 1) / 2; // QKᵀ and AV over the causal half
        return linear + attention;
    }
}
