using LoraMixer.Lora;
using LoraMixer.Mixing;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Decoding;

/// <summary>
/// One projection as the decode kernel sees it: a fp32 weight [Out, in] and bias read in place, plus the
/// low-rank experts added to it (a LoRA adapter, or the stacked experts of a LoRA-Mixer projection).
/// </summary>
internal readonly unsafe record struct DecodeLinear(nint Weight, nint Bias, int Out, LowRankExperts? LowRank)
{
    /// <summary>This projection writing into y [batch, stride].</summary>
    public Projection Into(float* y, long stride) => new(Weight, Bias, Out, (nint)y, stride);

    /// <summary>
    /// Reads a plain linear, a LoRA linear or a mixed projection (block-scope routing: every mixed projection
    /// of a block must follow the same <paramref name="router"/>); false for anything else.
    /// </summary>
    public static bool TryCreate(nn.Module<Tensor, Tensor> module, ref RoutingSlot? router, out DecodeLinear linear)
    {
        linear = default;
        switch (module)
        {
            case TorchSharp.Modules.Linear plain:
                return TryPlain(plain, null, out linear);
            case LoraLinear { Merged: true } lora:
                return TryPlain(lora.base_layer, null, out linear);
            case LoraLinear { training: false } lora:
                if (!NativeData.TryFloat(lora.lora_A, out nint a) || !NativeData.TryFloat(lora.lora_B, out nint b)) return false;
                return TryPlain(lora.base_layer, new LowRankExperts(a, b, (int)lora.lora_B.shape[0], lora.Rank,
                    new[] { lora.Rank }, new[] { (float)lora.Scaling }, Routed: false), out linear);
            case MixerLinear { OwnsSlot: false } mixed when !(mixed.training && mixed.Dropout > 0):
                if (router is not null && !ReferenceEquals(router, mixed.Slot)) return false;
                router = mixed.Slot;
                if (!NativeData.TryFloat(mixed.lora_A, out nint stackedA) || !NativeData.TryFloat(mixed.lora_B, out nint stackedB)) return false;
                return TryPlain(mixed.base_layer, new LowRankExperts(stackedA, stackedB, (int)mixed.lora_B.shape[1], (int)mixed.lora_A.shape[1],
                    mixed.Ranks.ToArray(), mixed.Scalings.Select(s => (float)s).ToArray(), Routed: true), out linear);
            default:
                return false;
        }
    }

    private static bool TryPlain(TorchSharp.Modules.Linear plain, LowRankExperts? lowRank, out DecodeLinear linear)
    {
        linear = default;
        nint bias = 0;
        if (!NativeData.TryFloat(plain.weight, out nint weight) || (plain.bias is not null && !NativeData.TryFloat(plain.bias, out bias))) return false;
        linear = new DecodeLinear(weight, bias, (int)plain.weight!.shape[0], lowRank);
        return true;
    }
}

/// <summary>
/// Stacked low-rank experts of one projection: A [E, MaxRank, in] and B [E, Out, MaxRank] (a plain LoRA is E = 1),
/// with each expert's rank and scaling; <paramref name="Routed"/> experts are weighted by the block's routing.
/// </summary>
internal sealed record LowRankExperts(nint A, nint B, int Out, int MaxRank, int[] Ranks, float[] Scalings, bool Routed);
