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
/// Each figure is the best of <c>--repeats</c> runs, after one warm-up pass of the whole measurement.
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
        Measure(baseModel, 1); // warms up the process (JIT, allocator, thread pool) so the first model measured is not penalised
        var (basePrefill, baseDecode) = Measure(baseModel, repeats);

        var merged = LlamaLoader.Load(dir);
        foreach (var target in TargetLinears.Find(merged, n => TargetLinears.AttentionProjections.Any(p => n.EndsWith("." + p))))
        {
            var lora = new LoraLinear(target.Linear, rank, 2.0);
            lora.SetWeights(randn(rank, target.Linear.weight!.shape[1]) * 0.1, randn(target.Linear.weight!.shape[0], rank) * 0.1);
            lora.Merge();
            target.Replace(lora);
        }
        var (mergedPrefill, mergedDecode) = Measure(merged, repeats);

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
        var (mixerPrefill, mixerDecode) = Measure(model, repeats);
        // Steady memory: RSS after five more prefill + decode loops compared with after the first (warm) one.
        double rssBefore = ProcessMemory.CurrentRssMb();
        for (int i = 0; i < 5; i++) Measure(model, 1);
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
            ["peak_rss_mb"] = Math.Round(ProcessMemory.PeakRssMb(), 1),
            ["rss_growth_mb_over_5_mixer_loops"] = Math.Round(rssAfter - rssBefore, 1),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    private static (double Prefill, double Decode) Measure(LlamaForCausalLM model, int repeats)
    {
        var config = model.Config;
        int tokens = Math.Min(512, config.MaxPositionEmbeddings);
        double best = double.MaxValue;
        for (int r = 0; r <= repeats; r++)
        {
            using var scope = NewDisposeScope();
            var ids = randint(config.VocabSize, new long[] { 1, tokens });
            var sw = Stopwatch.StartNew();
            model.Forward(ids, lastPositionOnly: true);
            if (r > 0) best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        // Decode: the best of the same number of runs, each a fresh cache with a short prompt then single-token steps.
        int prompt = 16, steps = Math.Min(128, config.MaxPositionEmbeddings - prompt);
        double bestDecode = double.MaxValue;
        for (int r = 0; r <= repeats; r++)
        {
            using var cache = model.CreateCache(1, prompt + steps);
            using (var scope = NewDisposeScope())
                model.Forward(randint(config.VocabSize, new long[] { 1, prompt }), cache: cache, lastPositionOnly: true);
            var timer = Stopwatch.StartNew();
            for (int s = 0; s < steps; s++)
            {
                using var scope = NewDisposeScope();
                model.Forward(randint(config.VocabSize, new long[] { 1, 1 }), cache: cache, lastPositionOnly: true);
            }
            if (r > 0) bestDecode = Math.Min(bestDecode, timer.Elapsed.TotalSeconds);
        }
        return (tokens / best, steps / bestDecode);
    }
}
