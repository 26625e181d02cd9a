using System.Diagnostics;
using System.Text.Json;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// Base-model speed: prefill tokens/s at 128 and 512 tokens, decode tokens/s for 1 and 8 sequences,
/// achieved GFLOP/s in prefill, peak RSS and RSS growth over a long decode loop. One JSON line.
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

        double Decode(int batch, int prompt, int steps)
        {
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
            return batch * steps / sw.Elapsed.TotalSeconds;
        }

        double prefill128 = Prefill(128);
        double prefill512 = Prefill(512);
        double decode1 = Decode(1, 16, 128);
        double decode8 = Decode(8, 16, 128);

        // Steady memory: RSS after a long decode loop compared with after a short one.
        Decode(1, 16, 32);
        double rssBefore = ProcessMemory.CurrentRssMb();
        for (int i = 0; i < 5; i++) Decode(1, 16, 200);
        double rssAfter = ProcessMemory.CurrentRssMb();

        int t512 = Math.Min(512, config.MaxPositionEmbeddings);
        double flopsPerPrefill = FlopsPerSequence(config, t512);
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
            ["prefill_512_gflops"] = Math.Round(flopsPerPrefill * prefill512 / t512 / 1e9, 2),
            ["peak_rss_mb"] = Math.Round(ProcessMemory.PeakRssMb(), 1),
            ["rss_growth_mb_over_1000_decode_steps"] = Math.Round(rssAfter - rssBefore, 1),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>Multiply-adds ×2 of one forward pass over t tokens: projections, MLP, LM head and attention scores.</summary>
    private static double FlopsPerSequence(LlamaConfig c, int t)
    {
        double q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim;
        double perTokenLayer = c.HiddenSize * (2 * q + 2 * kv) + 3.0 * c.HiddenSize * c.IntermediateSize;
        double linear = 2 * t * (c.NumHiddenLayers * perTokenLayer + (double)c.HiddenSize * c.VocabSize);
        double attention = 2 * c.NumHiddenLayers * 2.0 * q * t * (t + 1) / 2; // QKᵀ and AV over the causal half
        return linear + attention;
    }
}
