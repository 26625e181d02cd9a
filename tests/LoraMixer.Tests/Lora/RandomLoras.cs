using LoraMixer.Lora;
using LoraMixer.Models;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Lora;

/// <summary>Unmerged rank-3 LoRAs with random A and B (× 0.2) in inference mode, for kernel-against-reference tests.</summary>
internal static class RandomLoras
{
    /// <summary>Replaces every projection whose module name <paramref name="select"/> accepts; returns the adapters.</summary>
    public static List<LoraLinear> Attach(ICausalLM model, Func<string, bool> select)
    {
        var attached = new List<LoraLinear>();
        foreach (var target in TargetLinears.Find(model, select))
        {
            var lora = new LoraLinear(target.Linear, 3, 2.0);
            using (var scope = NewDisposeScope())
            using (no_grad())
                lora.SetWeights(randn(3, target.Linear.weight!.shape[1]) * 0.2, randn(target.Linear.weight!.shape[0], 3) * 0.2);
            lora.eval();
            target.Replace(lora);
            attached.Add(lora);
        }
        return attached;
    }
}
