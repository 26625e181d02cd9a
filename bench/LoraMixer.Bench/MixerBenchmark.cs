using System.Diagnostics;
using System.Text.Json;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// Mixer speed: prefill (512 tokens, or the model's window) and decode (1 sequence) tokens/s of the LoRA-Mixer
/// (E experts, top-k, rank r, random weights) against the plain base model and a single merged LoRA, as ratios.
/// Each figure is the best of <c>--repeats</c> rounds in which the three models take turns, after one warm-up run of each.
/// Also the ratio the mixer's extra arithmetic alone allows (<c>mixer_arithmetic_bound_*</c>): with only the k chosen
/// experts computed, and with all E (<c>_prefill_all_experts</c>), as the prefill does: many tokens take every expert's
/// products in two matmuls, the unchosen ones weighted zero, so that no gather or host synchronisation is needed.
/// </summary>
internal static class MixerBenchmark
{
    public static int Run(string[] args)
    {
        var options = new BenchArgs(args);
        string dir = options.Required("model");
        int experts = options.Int("experts", 6), topK = options.Int("top-k", 2), rank = options.Int("rank", 8);
        int repeats = options.Int("repeats", 5), threads = options.Int("threads", 0);
        if (threads > 0) set_num_threads(threads);
        using var noGrad = no_grad();
        manual_seed(0);

        var baseModel = LlamaLoader.Load(dir);

        var merged = LlamaLoader.Load(dir);
        foreach (var target in TargetLinears.Find(merged, n => TargetLinears.AttentionProjections.Any(p => n.EndsWith("." + p))))
        {
            var lora = new LoraLinear(target.Linear, rank, 2.0);
            lora.SetWeights(randn(rank, target.Linear.weight!.shape[1]) * 0.1, randn(target.Linear.weight!.shape[0], rank) * 0.1);
            lora.Merge();
            target.Replace(lora);
        }

        var model = LlamaLoader.Load(dir);
        var config = new MixerConfig
        {
            BaseModel = dir,
            Architecture = model.Config.Architecture,
            HiddenSize = model.Config.HiddenSize,
            NumHiddenLayers = model.Config.NumHiddenLayers,
            TopK = topK,
            Experts = Enumerable.Range(0, experts).Select(e => new MixerExpert($"e{e}", $"experts/e{e}")).ToArray(),
        };
        var expertConfig = new LoraConfig { R = rank, LoraAlpha = 2.0 * rank, TargetModules = TargetLinears.AttentionProjections };
        using var mixer = LoraMixerModel.Attach(model, config, Enumerable.Repeat(expertConfig, experts).ToArray());
        foreach (var p in mixer.Projections)
            for (int e = 0; e < experts; e++)
                p.SetExpert(e, randn(rank, p.lora_A.shape[2]) * 0.1, randn(p.lora_B.shape[1], rank) * 0.1);
        foreach (var (_, w) in mixer.RouterParameters()) w.copy_(randn(w.shape));
        // The three models take turns, one prefill and one decode run each per round, and each keeps its best: on a
        // shared machine a slow spell then hits all three alike instead of one model's whole measurement.
        var models = new[] { baseModel, merged, model };
        foreach (var m in models) MeasureOnce(m); // warms up the process (JIT, allocator, thread pool) and each model
        var bestPrefill = new double[3];
        var bestDecode = new double[3];
        Array.Fill(bestPrefill, double.MaxValue);
        Array.Fill(bestDecode, double.MaxValue);
        for (int r = 0; r < repeats; r++)
            for (int i = 0; i < models.Length; i++)
            {
                var (prefillSeconds, decodeSeconds) = MeasureOnce(models[i]);
                bestPrefill[i] = Math.Min(bestPrefill[i], prefillSeconds);
                bestDecode[i] = Math.Min(bestDecode[i], decodeSeconds);
            }
        int tokens = Math.Min(512, model.Config.MaxPositionEmbeddings), steps = DecodeSteps(model.Config);
        var (basePrefill, mergedPrefill, mixerPrefill) = (tokens / bestPrefill[0], tokens / bestPrefill[1], tokens / bestPrefill[2]);
        var (baseDecode, mergedDecode, mixerDecode) = (steps / bestDecode[0], steps / bestDecode[1], steps / bestDecode[2]);
        // Steady memory: RSS after five more prefill + decode loops compared with after the first (warm) one.
        double rssBefore = ProcessMemory.CurrentRssMb();
        for (int i = 0; i < 5; i++) MeasureOnce(model);
        double rssAfter = ProcessMemory.CurrentRssMb();

        var result = new Dictionary<string, object>
        {
            ["bench"] = "mixer",
            ["model"] = Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')),
            ["experts"] = experts,
            ["top_k"] = topK,
            ["rank"] = rank,
            ["threads"] = get_num_threads(),
            ["prefill_tokens"] = Math.Min(512, model.Config.MaxPositionEmbeddings),
            ["base_prefill_tok_s"] = Math.Round(basePrefill, 1),
            ["merged_lora_prefill_tok_s"] = Math.Round(mergedPrefill, 1),
            ["mixer_prefill_tok_s"] = Math.Round(mixerPrefill, 1),
            ["base_decode_tok_s"] = Math.Round(baseDecode, 1),
            ["merged_lora_decode_tok_s"] = Math.Round(mergedDecode, 1),
            ["mixer_decode_tok_s"] = Math.Round(mixerDecode, 1),
            ["decode_kernel_steps"] = new[] { baseModel.DecodeKernelSteps, merged.DecodeKernelSteps, model.DecodeKernelSteps },
            ["mixer_vs_base_prefill"] = Math.Round(mixerPrefill / basePrefill, 3),
            ["mixer_vs_merged_prefill"] = Math.Round(mixerPrefill / mergedPrefill, 3),
            ["mixer_vs_base_decode"] = Math.Round(mixerDecode / baseDecode, 3),
            ["mixer_vs_merged_decode"] = Math.Round(mixerDecode / mergedDecode, 3),
            ["mixer_arithmetic_bound_prefill"] = Math.Round(ArithmeticBound(model.Config, (tokens + 1) / 2.0, 1.0 / tokens, experts, topK, rank), 3),
            ["mixer_arithmetic_bound_prefill_all_experts"] = Math.Round(ArithmeticBound(model.Config, (tokens + 1) / 2.0, 1.0 / tokens, experts, experts, rank), 3),
            ["mixer_arithmetic_bound_decode"] = Math.Round(ArithmeticBound(model.Config, DecodePrompt + (steps + 1) / 2.0, 1.0, experts, topK, rank), 3),
            ["peak_rss_mb"] = Math.Round(ProcessMemory.PeakRssMb(), 1),
            ["rss_growth_mb_over_5_mixer_loops"] = Math.Round(rssAfter - rssBefore, 1),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>
    /// The mixer's tokens/s over the base's if both did their arithmetic at the same rate: the base's multiply-adds per
    /// token over those plus what the mixer adds, <paramref name="computed"/> experts of rank r on q, k, v and o
    /// (r·(in + out) each: the k chosen ones, or all E as the prefill computes them) and the block router (hidden·E).
    /// Attention reads <paramref name="context"/> positions on average; the LM head runs for
    /// <paramref name="headShare"/> of the tokens. A mixer doing that arithmetic cannot beat it; on a small model it
    /// sits below the targets.
    /// </summary>
    private static double ArithmeticBound(LlamaConfig c, double context, double headShare, int experts, int computed, int rank)
    {
        double hidden = c.HiddenSize, q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim;
        double layer = hidden * (2 * q + 2 * kv) + 3 * hidden * c.IntermediateSize + 2 * q * context;
        double baseMacs = c.NumHiddenLayers * layer + headShare * hidden * c.VocabSize;
        double added = c.NumHiddenLayers * (computed * rank * (2 * (hidden + q) + 2 * (hidden + kv)) + hidden * experts);
        return baseMacs / (baseMacs + added);
    }

    private const int DecodePrompt = 16;

    private static int DecodeSteps(LlamaConfig config) => Math.Min(128, config.MaxPositionEmbeddings - DecodePrompt);

    // Seconds of one 512-token prefill, and of the single-token steps after a short prompt in a fresh cache.
    private static (double Prefill, double Decode) MeasureOnce(LlamaForCausalLM model)
    {
        var config = model.Config;
        int tokens = Math.Min(512, config.MaxPositionEmbeddings), steps = DecodeSteps(config);
        double prefill;
        using (var scope = NewDisposeScope())
        {
            var ids = randint(config.VocabSize, new long[] { 1, tokens });
            var sw = Stopwatch.StartNew();
            model.Forward(ids, lastPositionOnly: true);
            prefill = sw.Elapsed.TotalSeconds;
        }
        using var cache = model.CreateCache(1, DecodePrompt + steps);
        using (var scope = NewDisposeScope())
            model.Forward(randint(config.VocabSize, new long[] { 1, DecodePrompt }), cache: cache, lastPositionOnly: true);
        var timer = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            model.Forward(randint(config.VocabSize, new long[] { 1, 1 }), cache: cache, lastPositionOnly: true);
        }
        return (prefill, timer.Elapsed.TotalSeconds);
    }
}
