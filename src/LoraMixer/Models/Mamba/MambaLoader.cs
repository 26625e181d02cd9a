using LoraMixer.Errors;
using LoraMixer.IO;
using static TorchSharp.torch;

namespace LoraMixer.Models.Mamba;

/// <summary>Builds a Mamba-1 / Falcon-Mamba model from a Hugging Face folder: config.json plus safetensors weights.</summary>
public static class MambaLoader
{
    /// <summary>
    /// Loads the model in <paramref name="modelDir"/> onto <paramref name="device"/> in float32, frozen
    /// and in evaluation mode. Missing or mis-shaped tensors fail with the tensor name and both shapes.
    /// </summary>
    public static MambaForCausalLM Load(string modelDir, Device? device = null)
    {
        if (!Directory.Exists(modelDir))
            throw new ModelFormatException($"model folder {modelDir} does not exist");
        var config = MambaConfig.Load(modelDir);
        using var checkpoint = SafeTensorsCheckpoint.Open(modelDir);
        CheckShapes(config, checkpoint, modelDir);
        var model = new MambaForCausalLM(config, device ?? CPU);
        ModelLoader.LoadParameters(model, checkpoint, modelDir);
        model.eval();
        return model;
    }

    /// <summary>
    /// Checks before anything is allocated that every tensor the config implies is present with the
    /// shape it implies; names the first offender and both shapes.
    /// </summary>
    public static void CheckShapes(MambaConfig config, SafeTensorsCheckpoint checkpoint, string source)
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

    /// <summary>Every weight a Mamba checkpoint with this config holds, by Hugging Face name.</summary>
    public static IEnumerable<(string Name, long[] Shape)> ExpectedShapes(MambaConfig config)
    {
        long hidden = config.HiddenSize, inner = config.IntermediateSize, n = config.StateSize, rank = config.TimeStepRank;
        yield return ("backbone.embeddings.weight", new[] { (long)config.VocabSize, hidden });
        for (int i = 0; i < config.NumHiddenLayers; i++)
        {
            string p = $"backbone.layers.{i}.";
            yield return (p + "norm.weight", new[] { hidden });
            yield return (p + "mixer.in_proj.weight", new[] { 2 * inner, hidden });
            if (config.UseBias) yield return (p + "mixer.in_proj.bias", new[] { 2 * inner });
            yield return (p + "mixer.conv1d.weight", new[] { inner, 1, (long)config.ConvKernel });
            if (config.UseConvBias) yield return (p + "mixer.conv1d.bias", new[] { inner });
            yield return (p + "mixer.x_proj.weight", new[] { rank + 2 * n, inner });
            yield return (p + "mixer.dt_proj.weight", new[] { inner, rank });
            yield return (p + "mixer.dt_proj.bias", new[] { inner });
            yield return (p + "mixer.A_log", new[] { inner, n });
            yield return (p + "mixer.D", new[] { inner });
            yield return (p + "mixer.out_proj.weight", new[] { hidden, inner });
            if (config.UseBias) yield return (p + "mixer.out_proj.bias", new[] { hidden });
        }
        yield return ("backbone.norm_f.weight", new[] { hidden });
        if (!config.TieWordEmbeddings) yield return ("lm_head.weight", new[] { (long)config.VocabSize, hidden });
    }
}
