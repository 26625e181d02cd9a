using static TorchSharp.torch;

namespace LoraMixer.Runtime;

/// <summary>Disposal of tensors held outside a dispose scope (recorded gate values, backups).</summary>
internal static class TensorLists
{
    /// <summary>Disposes every tensor of <paramref name="tensors"/>.</summary>
    public static void DisposeAll(this IEnumerable<Tensor> tensors)
    {
        foreach (var t in tensors) t.Dispose();
    }
}
