using System.Diagnostics;
using System.Text.Json;
using LoraMixer.Models;
using LoraMixer.Models.Decoding;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// Mamba prefill speed at 512 tokens: the C# kernel (<see cref="MambaForCausalLM.UsePrefillKernel"/>) against the
/// TorchSharp path with the chunked and the sequential selective scan; the scan alone on one layer's shapes (several
/// chunk sizes); where one layer's time goes (TorchSharp stages, and the kernel's mixer); cached decode tokens/s with
/// and without the decode kernel against the memory roof measured in the same run; and the prefill of a random
/// SmolLM-135M-shaped Llama built in-process (<c>--llama false</c> skips it). Runs on <c>--model DIR</c> or, without
/// it, on a random model shaped like mamba-130m. One JSON line.
/// </summary>
internal static unsafe class MambaScanBenchmark
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

        var profile = Profile(model, tokens, Best);

        var ids = tensor(Enumerable.Range(0, tokens).Select(_ => (long)random.Next(config.VocabSize)).ToArray(), new long[] { 1, tokens });
        double Prefill(SelectiveScanMode mode, bool kernel)
        {
            model.ScanMode = mode;
            model.UsePrefillKernel = kernel;
            double rate = tokens / Best(() => model.Forward(ids, lastPositionOnly: true));
            model.UsePrefillKernel = true;
            model.ScanMode = SelectiveScanMode.Chunked;
            return rate;
        }
        double prefillSequential = Prefill(SelectiveScanMode.Sequential, kernel: false);
        double prefillChunked = Prefill(SelectiveScanMode.Chunked, kernel: false);
        double prefillKernel = Prefill(SelectiveScanMode.Chunked, kernel: true);

        double Decode(int batch, int steps, bool kernel)
        {
            model.UseDecodeKernel = kernel;
            using var cache = model.CreateCache(batch, 16 + steps);
            using (var scope = NewDisposeScope())
                model.Forward(randint(config.VocabSize, new long[] { batch, 16 }), cache: cache, lastPositionOnly: true);
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
        double BestDecode(int batch, int steps, bool kernel = true)
        {
            double best = 0;
            for (int r = 0; r < Math.Max(1, repeats); r++) best = Math.Max(best, Decode(batch, steps, kernel));
            return best;
        }
        Decode(1, 8, kernel: true); // warm-up (JIT, thread pool)
        double decode = BestDecode(1, 64);
        double decode8 = BestDecode(8, 32);
        double decodeReference = BestDecode(1, 32, kernel: false);
        long kernelSteps = model.DecodeKernelSteps;
        double bandwidth = Roofs.ReadBandwidthGBs(get_num_threads());
        long weightBytes = Roofs.DecodeWeightBytes(config);
        double memoryRoof = bandwidth * 1e9 / weightBytes;
        var paired = Roofs.PairedRoofRatios(() => Decode(1, 64, kernel: true), weightBytes);

        double? llamaPrefill = options.String("llama", "true") == "false" ? null : LlamaPrefill(tokens, Best);

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
            ["layer_profile_ms"] = profile,
            ["prefill_sequential_tok_s"] = Math.Round(prefillSequential, 1),
            ["prefill_chunked_tok_s"] = Math.Round(prefillChunked, 1),
            ["prefill_speedup"] = Math.Round(prefillChunked / prefillSequential, 2),
            ["prefill_kernel_tok_s"] = Math.Round(prefillKernel, 1),
            ["prefill_kernel_vs_chunked"] = Math.Round(prefillKernel / prefillChunked, 2),
            ["llama_smollm135m_prefill_tok_s"] = llamaPrefill is double lp ? Math.Round(lp, 1) : "skipped",
            ["prefill_kernel_vs_llama"] = llamaPrefill is double l ? Math.Round(prefillKernel / l, 3) : "skipped",
            ["decode_b1_tok_s"] = Math.Round(decode, 1),
            ["decode_b8_tok_s"] = Math.Round(decode8, 1),
            ["decode_b1_torchsharp_tok_s"] = Math.Round(decodeReference, 1),
            ["decode_kernel_steps"] = kernelSteps,
            ["read_bandwidth_gb_s"] = Math.Round(bandwidth, 1),
            ["decode_weight_mb_per_token"] = Math.Round(weightBytes / 1e6, 1),
            ["memory_roof_tok_s"] = Math.Round(memoryRoof, 1),
            ["decode_b1_vs_memory_roof"] = Math.Round(decode / memoryRoof, 3),
            ["decode_b1_vs_memory_roof_paired"] = Math.Round(paired.Median, 3),
            ["decode_b1_vs_memory_roof_paired_rounds"] = paired.Rounds,
            ["decode_b1_kernel_vs_torchsharp"] = Math.Round(decode / decodeReference, 2),
            ["peak_rss_mb"] = Math.Round(ProcessMemory.PeakRssMb(), 1),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>
    /// Milliseconds per layer of each stage of one mixer block over <paramref name="tokens"/> positions (batch 1): the
    /// TorchSharp path's stages as <see cref="MambaMixer.Forward"/> runs them, and the whole block on either path.
    /// </summary>
    private static Dictionary<string, double> Profile(MambaForCausalLM model, int tokens, Func<Action, double> best)
    {
        var block = model.backbone.layers[0];
        var mixer = block.mixer;
        var c = model.Config;
        int inner = c.IntermediateSize, rank = c.TimeStepRank, n = c.StateSize, k = c.ConvKernel;
        var h = randn(1, tokens, c.HiddenSize).DetachFromDisposeScope();
        var u = block.norm.forward(h).DetachFromDisposeScope();
        var projected = mixer.in_proj.forward(u).transpose(1, 2).DetachFromDisposeScope();
        var x = projected.narrow(1, 0, inner);
        var z = projected.narrow(1, inner, inner);
        var xc = nn.functional.silu(nn.functional.conv1d(cat(new[] { zeros(1, inner, k - 1), x }, 2), mixer.conv1d.weight!, mixer.conv1d.bias, groups: inner))
            .DetachFromDisposeScope();
        var parameters = mixer.x_proj.forward(xc.transpose(1, 2)).DetachFromDisposeScope();
        var dt = parameters.narrow(-1, 0, rank);
        var b = parameters.narrow(-1, rank, n);
        var cc = parameters.narrow(-1, rank + n, n);
        var delta = nn.functional.softplus(mixer.dt_proj.forward(dt)).transpose(1, 2).DetachFromDisposeScope();
        var a = mixer.A_log.exp().neg().DetachFromDisposeScope();
        var (y, _) = SelectiveScan.Chunked(xc, delta, a, b, cc);
        y = y.DetachFromDisposeScope();
        var gated = ((y + xc * mixer.D.unsqueeze(-1)) * nn.functional.silu(z)).DetachFromDisposeScope();
        double Ms(Action action) => Math.Round(best(action) * 1e3, 2);
        var stages = new Dictionary<string, double>
        {
            ["norm"] = Ms(() => block.norm.forward(h)),
            ["in_proj"] = Ms(() => mixer.in_proj.forward(u)),
            ["in_proj_transpose_conv_silu"] = Ms(() =>
                nn.functional.silu(nn.functional.conv1d(cat(new[] { zeros(1, inner, k - 1), mixer.in_proj.forward(u).transpose(1, 2).narrow(1, 0, inner) }, 2),
                    mixer.conv1d.weight!, mixer.conv1d.bias, groups: inner))),
            ["x_proj"] = Ms(() => mixer.x_proj.forward(xc.transpose(1, 2))),
            ["dt_proj_softplus"] = Ms(() => nn.functional.softplus(mixer.dt_proj.forward(dt)).transpose(1, 2)),
            ["scan_chunked"] = Ms(() => SelectiveScan.Chunked(xc, delta, a, b, cc)),
            ["skip_gate"] = Ms(() => ((y + xc * mixer.D.unsqueeze(-1)) * nn.functional.silu(z)).Dispose()),
            ["out_proj"] = Ms(() => mixer.out_proj.forward(gated.transpose(1, 2))),
        };
        // The kernel's own stages on the same shapes (batch 1, no mask, no cache).
        var xz = mixer.in_proj.forward(u).contiguous().DetachFromDisposeScope();
        var convWeight = mixer.conv1d.weight!.view(inner, k).t().contiguous().DetachFromDisposeScope();
        var convBias = mixer.conv1d.bias!.contiguous().DetachFromDisposeScope();
        var xk = empty(1, tokens, inner).DetachFromDisposeScope();
        var deltaTimeMajor = delta.transpose(1, 2).contiguous().DetachFromDisposeScope();
        var aT = a.t().contiguous().DetachFromDisposeScope();
        var skip = mixer.D.contiguous().DetachFromDisposeScope();
        var yk = empty(1, tokens, inner).DetachFromDisposeScope();
        nint pXz = NativeData.Of(xz), pW = NativeData.Of(convWeight), pBias = NativeData.Of(convBias), pX = NativeData.Of(xk), pDelta = NativeData.Of(deltaTimeMajor),
            pA = NativeData.Of(aT), pSkip = NativeData.Of(skip), pY = NativeData.Of(yk), pB = NativeData.Of(parameters) + (rank * sizeof(float));
        int workers = get_num_threads();
        stages["kernel_conv_silu"] = Ms(() => MambaMixerKernel.Convolve((float*)pXz, 2L * inner, null, null, (float*)pW, (float*)pBias, (float*)pX,
            1, tokens, inner, k, workers));
        stages["kernel_scan_skip_gate"] = Ms(() => MambaMixerKernel.Scan((float*)pX, (float*)pDelta, (float*)pA, (float*)pB, (float*)pB + n, rank + 2L * n,
            (float*)pSkip, (float*)pXz + inner, 2L * inner, null, (float*)pY, 1, tokens, inner, n, workers));
        foreach (var t in new[] { xz, convWeight, convBias, xk, deltaTimeMajor, aT, skip, yk }) t.Dispose();
        mixer.UseKernel = false;
        stages["mixer_torchsharp"] = Ms(() => mixer.Forward(u, null, null, 0));
        mixer.UseKernel = true;
        stages["mixer_kernel"] = Ms(() => mixer.Forward(u, null, null, 0));
        stages["mixer_kernel_minus_projections"] = Math.Round(stages["mixer_kernel"] - stages["in_proj"] - stages["x_proj"] - stages["out_proj"]
            - Ms(() => mixer.dt_proj.forward(dt)), 2);
        stages["lm_head_last_position"] = Ms(() => nn.functional.linear(h.narrow(1, tokens - 1, 1), model.backbone.EmbeddingWeight));
        foreach (var t in new[] { h, u, projected, xc, parameters, delta, a, y, gated }) t.Dispose();
        return stages;
    }

    /// <summary>Prefill tokens/s of a random SmolLM-135M-shaped Llama (vocab 49152, normal(0, 0.02) weights), the same-size peer.</summary>
    private static double LlamaPrefill(int tokens, Func<Action, double> best)
    {
        using var llama = new LlamaForCausalLM(MakeModel.SmolLmShape(49152), CPU);
        foreach (var (_, p) in llama.named_parameters())
        {
            if (p.ndim == 2) p.normal_(0, 0.02);
            else p.fill_(1.0);
        }
        var random = new Random(1);
        var ids = tensor(Enumerable.Range(0, tokens).Select(_ => (long)random.Next(49152)).ToArray(), new long[] { 1, tokens });
        return tokens / best(() => llama.Forward(ids, lastPositionOnly: true));
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
