using LoraMixer.Errors;
using LoraMixer.IO;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models;

/// <summary>Builds a model from a Hugging Face folder: config.json plus safetensors weights.</summary>
public static class ModelLoader
{
    /// <summary>
    /// Loads whichever supported causal LM <paramref name="modelDir"/> holds: the Llama family through
    /// <see cref="Load"/>, Mamba-1 and Falcon-Mamba through <see cref="MambaLoader.Load"/>.
    /// </summary>
    public static ICausalLM LoadCausalLM(string modelDir, Device? device = null)
    {
        if (!Directory.Exists(modelDir))
            throw new ModelFormatException($"model folder {modelDir} does not exist");
        return MambaConfig.DescribesStateSpaceModel(modelDir) ? MambaLoader.Load(modelDir, device) : Load(modelDir, device);
    }

    /// <summary>
    /// Loads the model in <paramref name="modelDir"/> onto <paramref name="device"/> in float32, frozen
    /// and in evaluation mode. Missing or mis-shaped tensors fail with the tensor name and both shapes.
    /// </summary>
    public static LlamaForCausalLM Load(string modelDir, Device? device = null)
    {
        if (!Directory.Exists(modelDir))
            throw new ModelFormatException($"model folder {modelDir} does not exist");
        var config = LlamaConfig.Load(modelDir);
        device ??= CPU;
        using var checkpoint = SafeTensorsCheckpoint.Open(modelDir);
        CheckShapes(config, checkpoint, modelDir);
        var model = new LlamaForCausalLM(config, CPU);
        LoadParameters(model, checkpoint, modelDir);
        if (device.type != DeviceType.CPU)
        {
            model.Dispose();
            model = new LlamaForCausalLM(config, device);
            LoadParameters(model, checkpoint, modelDir);
        }
        model.eval();
        return model;
    }

    /// <summary>
    /// Checks before anything is allocated that every tensor the config implies is present with the
    /// shape it implies; names the first offender and both shapes.
    /// </summary>
    public static void CheckShapes(LlamaConfig config, SafeTensorsCheckpoint checkpoint, string source)
    {
        foreach (var (name, expected) in ExpectedShapes(config))
        {
            if (!checkpoint.Contains(name))
                throw new ModelFormatException($"{source}: tensor '{name}' is missing from the weights; the folder does not match its config.json");
            long[] actual = checkpoint.Shape(name);
            if (!actual.SequenceEqual(expected))
                throw new ModelFormatException(
                    $"{source}: tensor '{name}' has shape [{string.Join(", ", actual)}] but config.json implies [{string.Join(", ", expected)}]");
        }
    }

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

    /// <summary>Copies every parameter of <paramref name="module"/> from the checkpoint tensor of the same name.</summary>
    public static void LoadParameters(nn.Module module, SafeTensorsCheckpoint checkpoint, string source)
    {
        using var noGrad = no_grad();
        foreach (var (name, parameter) in module.named_parameters())
        {
            if (!checkpoint.Contains(name))
                throw new ModelFormatException($"{source}: tensor '{name}' is missing from the weights; the folder does not match its config.json");
            using var scope = NewDisposeScope();
            long[] shape = checkpoint.Shape(name);
            if (!shape.SequenceEqual(parameter.shape))
                throw new ModelFormatException(
                    $"{source}: tensor '{name}' has shape [{string.Join(", ", shape)}] but config.json implies [{string.Join(", ", parameter.shape)}]");
            var value = checkpoint.Read(name);
            parameter.copy_(value);
            parameter.requires_grad = false;
        }
    }
}
