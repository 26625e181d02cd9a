using System.Text.Json;
using LoraMixer.IO;
using LoraMixer.Models.Llama;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// <c>make-model --shape smollm-135m|stories260k [--vocab N] --out DIR</c>: a Hugging Face Llama folder
/// (config.json + model.safetensors) of the named shape with random weights (normal, std 0.02; norms 1), so
/// anyone can reproduce the benchmark table without downloading a model.
/// </summary>
internal static class MakeModel
{
    public static int Run(string[] args)
    {
        var options = new BenchArgs(args);
        string shape = options.Required("shape"), dir = options.Required("out");
        var config = shape switch
        {
            "smollm-135m" => SmolLmShape(49152),
            "stories260k" => Config(hidden: 64, intermediate: 172, layers: 5, heads: 8, kvHeads: 4, vocab: 512, positions: 512),
            _ => throw new ArgumentException($"unknown --shape '{shape}'; use smollm-135m or stories260k"),
        };
        config = config with { VocabSize = options.Int("vocab", config.VocabSize) };
        manual_seed(options.Int("seed", 0));
        using var noGrad = no_grad();
        using var model = new LlamaForCausalLM(config, CPU);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (p.ndim == 2) p.normal_(0, 0.02);
            else p.fill_(1.0);
            tensors.Add(new(name, p));
        }
        Directory.CreateDirectory(dir);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        var json = new Dictionary<string, object>
        {
            ["architectures"] = new[] { "LlamaForCausalLM" },
            ["model_type"] = "llama",
            ["hidden_size"] = config.HiddenSize,
            ["intermediate_size"] = config.IntermediateSize,
            ["num_hidden_layers"] = config.NumHiddenLayers,
            ["num_attention_heads"] = config.NumAttentionHeads,
            ["num_key_value_heads"] = config.NumKeyValueHeads,
            ["vocab_size"] = config.VocabSize,
            ["max_position_embeddings"] = config.MaxPositionEmbeddings,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["tie_word_embeddings"] = true,
            ["hidden_act"] = "silu",
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["torch_dtype"] = "float32",
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["bench"] = "make-model", ["shape"] = shape, ["out"] = dir, ["parameters"] = config.ParameterCount(),
        }));
        return 0;
    }

    /// <summary>The SmolLM-135M shape (hidden 576, 30 layers, 9/3 heads, intermediate 1536) with <paramref name="vocab"/> tokens.</summary>
    public static LlamaConfig SmolLmShape(int vocab) =>
        Config(hidden: 576, intermediate: 1536, layers: 30, heads: 9, kvHeads: 3, vocab: vocab, positions: 2048);

    private static LlamaConfig Config(int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab, int positions) => new()
    {
        Architecture = "LlamaForCausalLM", ModelType = "llama", VocabSize = vocab, HiddenSize = hidden,
        IntermediateSize = intermediate, NumHiddenLayers = layers, NumAttentionHeads = heads, NumKeyValueHeads = kvHeads,
        HeadDim = hidden / heads, MaxPositionEmbeddings = positions, RmsNormEps = 1e-5, RopeTheta = 10000,
        TieWordEmbeddings = true, QkvBias = false, OutputBias = false,
    };
}
