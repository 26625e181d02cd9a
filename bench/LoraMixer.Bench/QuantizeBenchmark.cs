using System.Diagnostics;
using System.Text.Json;
using LoraMixer.Demo;
using LoraMixer.Models;
using LoraMixer.Quantization;
using LoraMixer.Tokenization;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// <c>--quantize int8</c> against fp32 on one model: decode tokens/s at batch 1 and 8 (the two copies take turns
/// within each round), bytes of weight matrices read per token, the read bandwidth of the same run and each copy's
/// share of its memory roof, and the perplexity of held-out text under each copy (<c>--text FILE</c>, or
/// <c>--text demo</c> for documents of the default model's pretraining corpus that it never saw). One JSON line.
/// </summary>
internal static class QuantizeBenchmark
{
    public static int Run(string[] args)
    {
        var options = new BenchArgs(args);
        string dir = options.Required("model");
        int rounds = options.Int("rounds", 3);
        int steps = options.Int("steps", 128);
        int maxTokens = options.Int("tokens", 4096);
        int threads = options.Int("threads", 0);
        if (threads > 0) set_num_threads(threads);
        string? text = options.Optional("text");

        using var fp32 = ModelLoader.LoadCausalLM(dir, CPU);
        using var int8 = ModelLoader.LoadCausalLM(dir, CPU);
        var summary = Int8Quantizer.Quantize(int8);
        using var noGrad = no_grad();

        double? pplFp32 = null, pplInt8 = null;
        int scored = 0;
        if (text is not null)
        {
            var sequences = HeldOut(TokenizerLoader.Load(dir), text, maxTokens, Math.Min(256, fp32.MaxPositionEmbeddings));
            (pplFp32, scored) = Perplexity(fp32, sequences);
            (pplInt8, _) = Perplexity(int8, sequences);
        }

        Decode(fp32, 1, 16);
        Decode(int8, 1, 16); // warm-up
        double b1Fp32 = 0, b1Int8 = 0, b8Fp32 = 0, b8Int8 = 0;
        for (int r = 0; r < rounds; r++)
        {
            b1Fp32 = Math.Max(b1Fp32, Decode(fp32, 1, steps));
            b1Int8 = Math.Max(b1Int8, Decode(int8, 1, steps));
            b8Fp32 = Math.Max(b8Fp32, Decode(fp32, 8, steps));
            b8Int8 = Math.Max(b8Int8, Decode(int8, 8, steps));
        }
        double bandwidth = Roofs.ReadBandwidthGBs(get_num_threads());
        double roofFp32 = bandwidth * 1e9 / summary.Fp32Bytes, roofInt8 = bandwidth * 1e9 / summary.Int8Bytes;
        var result = new Dictionary<string, object?>
        {
            ["bench"] = "quantize",
            ["model"] = Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')),
            ["threads"] = get_num_threads(),
            ["group_size"] = summary.GroupSize,
            ["matrices"] = summary.Matrices,
            ["matrix_mb_per_token_fp32"] = Math.Round(summary.Fp32Bytes / 1e6, 1),
            ["matrix_mb_per_token_int8"] = Math.Round(summary.Int8Bytes / 1e6, 1),
            ["decode_b1_fp32_tok_s"] = Math.Round(b1Fp32, 1),
            ["decode_b1_int8_tok_s"] = Math.Round(b1Int8, 1),
            ["decode_b1_int8_vs_fp32"] = Math.Round(b1Int8 / b1Fp32, 2),
            ["decode_b8_fp32_tok_s"] = Math.Round(b8Fp32, 1),
            ["decode_b8_int8_tok_s"] = Math.Round(b8Int8, 1),
            ["decode_b8_int8_vs_fp32"] = Math.Round(b8Int8 / b8Fp32, 2),
            ["read_bandwidth_gb_s"] = Math.Round(bandwidth, 1),
            ["decode_b1_fp32_vs_memory_roof"] = Math.Round(b1Fp32 / roofFp32, 3),
            ["decode_b1_int8_vs_memory_roof"] = Math.Round(b1Int8 / roofInt8, 3),
            ["perplexity_tokens"] = scored,
            ["perplexity_fp32"] = pplFp32 is { } a ? Math.Round(a, 4) : null,
            ["perplexity_int8"] = pplInt8 is { } b ? Math.Round(b, 4) : null,
            ["perplexity_change_pct"] = pplFp32 is { } c && pplInt8 is { } d ? Math.Round((d / c - 1) * 100, 3) : null,
            ["peak_rss_mb"] = Math.Round(ProcessMemory.PeakRssMb(), 1),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    // Tokens/s of `steps` greedy-free decoding steps (random ids) for `batch` sequences after a 16-token prompt.
    private static double Decode(ICausalLM model, int batch, int steps)
    {
        steps = Math.Min(steps, model.MaxPositionEmbeddings - 16);
        using var cache = model.CreateCache(batch, 16 + steps);
        using (var scope = NewDisposeScope())
            model.Forward(randint(model.VocabSize, new long[] { batch, 16 }), cache: cache, lastPositionOnly: true);
        var sw = Stopwatch.StartNew();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            model.Forward(randint(model.VocabSize, new long[] { batch, 1 }), cache: cache, lastPositionOnly: true);
        }
        return batch * steps / sw.Elapsed.TotalSeconds;
    }

    // Sequences of up to `window` tokens and `maxTokens` in all: "demo" gives documents of the default model's
    // pretraining corpus drawn with a seed its pretraining never used, each as it was trained (BOS, text, EOS); a file is
    // cut into windows.
    private static List<long[]> HeldOut(ITokenizer tokenizer, string text, int maxTokens, int window)
    {
        IEnumerable<long[]> all = text == "demo"
            ? PretrainingCorpus.Generate(2_000, seed: 7_777).Select(d => tokenizer.Encode(d).Select(i => (long)i).Append(tokenizer.EosId ?? 0).ToArray())
            : File.ReadAllText(text) is var content
                ? tokenizer.Encode(content).Select(i => (long)i).Chunk(window)
                : [];
        var sequences = new List<long[]>();
        int total = 0;
        foreach (var s in all)
        {
            if (total >= maxTokens) break;
            var kept = s.Take(Math.Min(window, maxTokens - total)).ToArray();
            if (kept.Length < 2) continue;
            sequences.Add(kept);
            total += kept.Length;
        }
        return sequences;
    }

    // exp(mean negative log-likelihood) of every token after the first of each sequence.
    private static (double Perplexity, int Tokens) Perplexity(ICausalLM model, List<long[]> sequences)
    {
        double nll = 0;
        int count = 0;
        foreach (var ids in sequences)
        {
            int length = ids.Length;
            using var scope = NewDisposeScope();
            var input = tensor(ids, new long[] { 1, length });
            var logProbs = nn.functional.log_softmax(model.Forward(input), -1)[0].narrow(0, 0, length - 1);
            var targets = input[0].narrow(0, 1, length - 1).unsqueeze(-1);
            nll -= logProbs.gather(-1, targets).sum().item<float>();
            count += length - 1;
        }
        return (Math.Exp(nll / count), count);
    }
}
