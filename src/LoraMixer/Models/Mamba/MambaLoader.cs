using LoraMixer.Errors;
using LoraMixer.IO;
using static TorchSharp.torch;

namespace LoraMixer.Models.Mamba;

/// <summary>Builds a Mamba-1 / Falcon-Mamba model from a Hugging Face folder: config.json plus safetensors weights.</summary>
public static class MambaLoader
{
    /// <summary>
    /// Loads the model in <paramref name="modelDir"/> onto <paramref name="device"/> in float32, frozen
    /// and in evaluation mode. Missing, unknown, mis-shaped or non-finite tensors fail naming the tensor.
    /// </summary>
    public static MambaForCausalLM Load(string modelDir, Device? device = null)
    {
        if (!Directory.Exists(modelDir))
            throw new ModelFormatException($"model folder {modelDir} does not exist");
        var config = MambaConfig.Load(modelDir);
        using var checkpoint = SafeTensorsCheckpoint.Open(modelDir);
        CheckWeights(config, checkpoint, modelDir);
        var model = new MambaForCausalLM(config, device ?? CPU);
        CheckpointWeights.Load(model, checkpoint, modelDir);
        model.eval();
        return model;
    }

    /// <summary>Checks that <paramref name="checkpoint"/> holds exactly the tensors <paramref name="config"/> implies.</summary>
    public static void CheckWeights(MambaConfig config, SafeTensorsCheckpoint checkpoint, string source) =>
        CheckpointWeights.Check(ExpectedShapes(config), checkpoint, source,
            name => config.TieWordEmbeddings && name == "lm_head.weight"); // a saved head that tying replaces, as transformers does

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
