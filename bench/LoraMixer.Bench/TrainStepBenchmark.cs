using System.Diagnostics;
using System.Text.Json;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// Full-model training speed of a small random Llama (forward + backward + SGD update): tokens/s and
/// RSS growth over the loop. Sizes the demo's default model.
/// </summary>
internal static class TrainStepBenchmark
{
    public static int Run(string[] args)
    {
        var options = new BenchArgs(args);
        int hidden = options.Int("hidden", 128), layers = options.Int("layers", 4), vocab = options.Int("vocab", 100);
        int batch = options.Int("batch", 32), seq = options.Int("seq", 48), steps = options.Int("steps", 30);
        bool forwardOnly = options.Int("forward-only", 0) == 1;
        var config = new LlamaConfig
        {
            Architecture = "LlamaForCausalLM", ModelType = "llama", VocabSize = vocab, HiddenSize = hidden,
            IntermediateSize = hidden * 8 / 3, NumHiddenLayers = layers, NumAttentionHeads = 4, NumKeyValueHeads = 4,
            HeadDim = hidden / 4, MaxPositionEmbeddings = 256, RmsNormEps = 1e-5, RopeTheta = 10000,
            TieWordEmbeddings = true, QkvBias = false, OutputBias = false,
        };
        manual_seed(0);
        using var model = new LlamaForCausalLM(config, CPU);
        var parameters = model.parameters().ToArray();
        double rssStart = 0;
        var sw = new Stopwatch();
        for (int s = 0; s < steps; s++)
        {
            if (s == 3) { sw.Start(); rssStart = ProcessMemory.CurrentRssMb(); }
            using var scope = NewDisposeScope();
            var ids = randint(vocab, new long[] { batch, seq + 1 });
            var logits = model.Forward(ids.narrow(1, 0, seq));
            var loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), ids.narrow(1, 1, seq).reshape(-1));
            if (forwardOnly) continue;
            loss.backward();
            using (no_grad())
                foreach (var p in parameters)
                {
                    if (p.grad is null) continue;
                    p.sub_(p.grad * 1e-3);
                    p.grad.zero_();
                }
        }
        sw.Stop();
        var result = new Dictionary<string, object>
        {
            ["bench"] = "train-step",
            ["parameters"] = config.ParameterCount(),
            ["hidden"] = hidden, ["layers"] = layers, ["batch"] = batch, ["seq"] = seq,
            ["threads"] = get_num_threads(),
            ["forward_only"] = forwardOnly,
            ["steps_per_s"] = Math.Round((steps - 3) / sw.Elapsed.TotalSeconds, 2),
            ["train_tok_s"] = Math.Round((steps - 3) * batch * seq / sw.Elapsed.TotalSeconds, 1),
            ["rss_growth_mb"] = Math.Round(ProcessMemory.CurrentRssMb() - rssStart, 1),
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }
}
