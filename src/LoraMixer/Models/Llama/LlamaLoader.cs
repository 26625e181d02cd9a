using LoraMixer.Errors;
using LoraMixer.IO;
using static TorchSharp.torch;

namespace LoraMixer.Models.Llama;

/// <summary>Builds a Llama-family model from a Hugging Face folder: config.json plus safetensors weights.</summary>
public static class LlamaLoader
{
    /// <summary>
    /// Loads the model in <paramref name="modelDir"/> onto <paramref name="device"/> in float32, frozen
    /// and in evaluation mode. Missing, unknown, mis-shaped or non-finite tensors fail naming the tensor.
    /// </summary>
    public static LlamaForCausalLM Load(string modelDir, Device? device = null)
    {
        if (!Directory.Exists(modelDir))
            throw new ModelFormatException($"model folder {modelDir} does not exist");
        var config = LlamaConfig.Load(modelDir);
        using var checkpoint = SafeTensorsCheckpoint.Open(modelDir);
        CheckWeights(config, checkpoint, modelDir);
        var model = new LlamaForCausalLM(config, device ?? CPU);
        CheckpointWeights.Load(model, checkpoint, modelDir);
        model.eval();
        return model;
    }

    /// <summary>Checks that <paramref name="checkpoint"/> holds exactly the tensors <paramref name="config"/> implies.</summary>
    public static void CheckWeights(LlamaConfig config, SafeTensorsCheckpoint checkpoint, string source) =>
        CheckpointWeights.Check(ExpectedShapes(config), checkpoint, source, name => IsIgnorable(config, name));

    // Tensors transformers itself skips on load: rotary inv_freq buffers of older exports, and a saved
    // lm_head that tie_word_embeddings replaces by the embeddings.
    private static bool IsIgnorable(LlamaConfig config, string name) =>
        (name.StartsWith("model.layers.", StringComparison.Ordinal) && name.EndsWith(".self_attn.rotary_emb.inv_freq", StringComparison.Ordinal))
        || (config.TieWordEmbeddings && name == "lm_head.weight");

    /// <summary>Every weight a Llama-family checkpoint with this config holds, by Hugging Face name.</summary>
    public static IEnumerable<(string Name, long[] Shape)> ExpectedShapes(LlamaConfig config)
    {
        long hidden = config.HiddenSize, q = (long)config.NumAttentionHeads * config.HeadDim, kv = (long)config.NumKeyValueHeads * config.HeadDim;
        yield return ("model.embed_tokens.weight", new[] { (long)config.VocabSize, hidden });
        for (int i = 0; i < config.NumHiddenLayers; i++)
        {
            string p = $"model.layers.{i}.";
            yield return (p + "input_layernorm.weight", new[] { hidden });
            yield return (p + "self_attn.q_proj.weight", new[] { q, hidden });
            yield return (p + "self_attn.k_proj.weight", new[] { kv, hidden });
            yield return (p + "self_attn.v_proj.weight", new[] { kv, hidden });
            yield return (p + "self_attn.o_proj.weight", new[] { hidden, q });
            if (config.QkvBias)
            {
                yield return (p + "self_attn.q_proj.bias", new[] { q });
                yield return (p + "self_attn.k_proj.bias", new[] { kv });
                yield return (p + "self_attn.v_proj.bias", new[] { kv });
            }
            if (config.OutputBias) yield return (p + "self_attn.o_proj.bias", new[] { hidden });
            yield return (p + "post_attention_layernorm.weight", new[] { hidden });
            yield return (p + "mlp.gate_proj.weight", new[] { (long)config.IntermediateSize, hidden });
            yield return (p + "mlp.up_proj.weight", new[] { (long)config.IntermediateSize, hidden });
            yield return (p + "mlp.down_proj.weight", new[] { hidden, (long)config.IntermediateSize });
        }
        yield return ("model.norm.weight", new[] { hidden });
        if (!config.TieWordEmbeddings) yield return ("lm_head.weight", new[] { (long)config.VocabSize, hidden });
    }
}
