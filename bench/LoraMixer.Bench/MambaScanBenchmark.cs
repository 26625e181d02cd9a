using System.Diagnostics;
using System.Text.Json;
using LoraMixer.Models;
using LoraMixer.Models.Mamba;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// Mamba prefill speed at 512 tokens, chunked against sequential selective scan: the scan alone on
/// one layer's shapes (several chunk sizes) and the whole model, plus cached decode tokens/s. Runs
/// on <c>--model DIR</c> or, without it, on a random model shaped like mamba-130m. One JSON line.
/// </summary>
internal static class MambaScanBenchmark
{
    public static int Run(string[] args)
    {
        var options = new BenchArgs(args);
        int repeats = options.Int("repeats", 3);
        int tokens = options.Int("tokens", 512);
        int threads = options.Int("threads", 0);
        if (threads > 0) set_num_threads(threads);
        string? dir = args.Contains("--model") ? options.Required("model") : null;

        using var noGrad = no_grad();
        using var model = dir is null ? RandomModel(options.Int("layers", 24)) : MambaLoader.Load(dir);
        var config = model.Config;
        var random = new Random(0);

        double Best(Action action)
        {
            double best = double.MaxValue;
            for (int r = 0; r <= repeats; r++) // first run warms up
            {
                using var scope = NewDisposeScope();
                var sw = Stopwatch.StartNew();
                action();
                if (r > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return best;
        }

        // The scan alone on the shapes of one layer, with Δ, A, B, C as a freshly initialised model gives them.
        long d = config.IntermediateSize, n = config.StateSize;
        var x = randn(1, d, tokens).DetachFromDisposeScope();
        var delta = (rand(1, d, tokens) * 0.1 + 0.001).DetachFromDisposeScope();
        var a = log(arange(1, n + 1, dtype: ScalarType.Float32)).repeat(d, 1).exp().neg().DetachFromDisposeScope();
        var b = randn(1, tokens, n).DetachFromDisposeScope();
        var c = randn(1, tokens, n).DetachFromDisposeScope();
        double scanSequential = tokens / Best(() => SelectiveScan.Sequential(x, delta, a, b, c));
        var scanChunked = new Dictionary<string, double>();
        foreach (int chunk in new[] { 4, 8, 16, 32, 64 })
            scanChunked[$"chunk_{chunk}"] = Math.Round(tokens / Best(() => SelectiveScan.Chunked(x, delta, a, b, c, null, chunk)), 1);
        scanChunked["auto_" + SelectiveScan.AutoChunkSize(1, d, n)] = Math.Round(tokens / Best(() => SelectiveScan.Chunked(x, delta, a, b, c)), 1);
        var (ySeq, _) = SelectiveScan.Sequential(x, delta, a, b, c);
        var (yChunk, _) = SelectiveScan.Chunked(x, delta, a, b, c);
        double scanMaxDiff = (ySeq - yChunk).abs().max().item<float>();

        var ids = tensor(Enumerable.Range(0, tokens).Select(_ => (long)random.Next(config.VocabSize)).ToArray(), new long[] { 1, tokens });
        double Prefill(SelectiveScanMode mode)
        {
            model.ScanMode = mode;
            return tokens / Best(() => model.Forward(ids, lastPositionOnly: true));
        }
        double prefillSequential = Prefill(SelectiveScanMode.Sequential);
        double prefillChunked = Prefill(SelectiveScanMode.Chunked);

        int steps = 64;
        using var cache = model.CreateCache(1, tokens + steps);
        using (var scope = NewDisposeScope()) model.Forward(ids.narrow(1, 0, 16), cache: cache, lastPositionOnly: true);
        var sw = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            model.Forward(ids.narrow(1, s, 1), cache: cache, lastPositionOnly: true);
        }
        double decode = steps / sw.Elapsed.TotalSeconds;

        var result = new Dictionary<string, object>
        {
            ["bench"] = "mamba-scan",
            ["model"] = dir is null ? "random-mamba-130m-shape" : Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')),
            ["parameters"] = config.ParameterCount(),
            ["layers"] = config.NumHiddenLayers,
            ["d_inner"] = d,
            ["state_size"] = n,
            ["threads"] = get_num_threads(),
            ["tokens"] = tokens,
            ["scan_sequential_tok_s"] = Math.Round(scanSequential, 1),
            ["scan_chunked_tok_s"] = scanChunked,
            ["scan_max_abs_diff"] = scanMaxDiff,
            ["prefill_sequential_tok_s"] = Math.Round(prefillSequential, 1),
            ["prefill_chunked_tok_s"] = Math.Round(prefillChunked, 1),
            ["prefill_speedup"] = Math.Round(prefillChunked / prefillSequential, 2),
            ["decode_b1_tok_s"] = Math.Round(decode, 1),
            ["peak_rss_mb"] = Math.Round(ProcessMemory.PeakRssMb(), 1),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>mamba-130m's shape (hidden 768, d_inner 1536, N 16) with HF-style random initialisation.</summary>
    private static MambaForCausalLM RandomModel(int layers)
    {
        var config = MambaConfig.FromJson(new System.Text.Json.Nodes.JsonObject
        {
            ["model_type"] = "mamba", ["vocab_size"] = 50280, ["hidden_size"] = 768, ["state_size"] = 16,
            ["num_hidden_layers"] = layers, ["expand"] = 2, ["conv_kernel"] = 4,
        }, "built-in config");
        var model = new MambaForCausalLM(config, CPU);
        using var scope = NewDisposeScope();
        foreach (var layer in model.backbone.layers)
        {
            var mixer = layer.mixer;
            // HF _init_weights: A_log = log(1..N); dt_proj bias = softplus⁻¹(Δ), Δ log-uniform in [0.001, 0.1].
            mixer.A_log.copy_(log(arange(1, config.StateSize + 1, dtype: ScalarType.Float32)).repeat(config.IntermediateSize, 1));
            var dt = exp(rand(config.IntermediateSize) * (Math.Log(0.1) - Math.Log(0.001)) + Math.Log(0.001));
            ((TorchSharp.Modules.Linear)mixer.dt_proj).bias!.copy_(dt + log(-expm1(-dt)));
        }
        model.eval();
        return model;
    }
}
