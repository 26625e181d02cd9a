using static TorchSharp.torch;

namespace LoraMixer.Models;

/// <summary>Loads any supported causal LM from a Hugging Face folder (config.json plus safetensors weights).</summary>
public static class ModelLoader
{
    /// <summary>
    /// Loads whichever supported causal LM <paramref name="modelDir"/> holds, through the family its
    /// config.json names (<see cref="ModelFamilies"/>), frozen and in evaluation mode.
    /// </summary>
    public static ICausalLM LoadCausalLM(string modelDir, Device? device = null) =>
        ModelFamilies.ForModelFolder(modelDir).Load(modelDir, device);
}
