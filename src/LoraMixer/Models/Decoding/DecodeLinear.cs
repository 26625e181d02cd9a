using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Decoding;

/// <summary>
/// One projection as the decode kernel sees it: a fp32 weight [Out, in] and bias read in place, plus the
/// low-rank experts added to it (a LoRA adapter, or the stacked experts of a LoRA-Mixer projection), and the
/// weight's int8 copy when the model was quantized.
/// </summary>
internal readonly unsafe record struct DecodeLinear(nint Weight, nint Bias, int Out, LowRankExperts? LowRank, Int8View Int8 = default)
{
    /// <summary>This projection writing into y [batch, stride].</summary>
    public Projection Into(float* y, long stride) => new(Weight, Bias, Out, (nint)y, stride, Int8);

    /// <summary>
    /// Reads a plain linear, a LoRA linear or a mixed projection (block-scope routing: every mixed projection
    /// of a block must follow the same <paramref name="router"/>); false for anything else. With <paramref name="int8"/>,
    /// a weight that has an int8 copy is read from it.
    /// </summary>
    public static bool TryCreate(nn.Module<Tensor, Tensor> module, ref RoutingSlot? router, out DecodeLinear linear, Int8Weights? int8 = null)
    {
        linear = default;
        switch (module)
        {
            case TorchSharp.Modules.Linear plain:
                return TryPlain(plain, null, int8, out linear);
            case LoraLinear { Merged: true } lora:
                return TryPlain(lora.base_layer, null, int8, out linear);
            case LoraLinear { training: false } lora:
                if (!NativeData.TryFloat(lora.lora_A, out nint a) || !NativeData.TryFloat(lora.lora_B, out nint b)) return false;
                return TryPlain(lora.base_layer, new LowRankExperts(a, b, (int)lora.lora_B.shape[0], lora.Rank,
                    new[] { lora.Rank }, new[] { (float)lora.Scaling }, Routed: false), int8, out linear);
            case MixerLinear { OwnsSlot: false } mixed when !(mixed.training && mixed.Dropout > 0):
                if (router is not null && !ReferenceEquals(router, mixed.Slot)) return false;
                router = mixed.Slot;
                if (!NativeData.TryFloat(mixed.lora_A, out nint stackedA) || !NativeData.TryFloat(mixed.lora_B, out nint stackedB)) return false;
                return TryPlain(mixed.base_layer, new LowRankExperts(stackedA, stackedB, (int)mixed.lora_B.shape[1], (int)mixed.lora_A.shape[1],
                    mixed.Ranks.ToArray(), mixed.Scalings.Select(s => (float)s).ToArray(), Routed: true), int8, out linear);
            default:
                return false;
        }
    }

    /// <summary>
    /// y[b] += Σ_j g_j s_e B_e A_e x[b] over row b's chosen experts (<paramref name="experts"/>/<paramref name="gates"/>
    /// [batch, topK]) or the adapter's one expert; nothing for a plain projection. Runs on the calling thread.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void AddLowRank(float* x, int inDim, float* y, long yStride, int batch, int topK, int[] experts, float[] gates)
    {
        if (LowRank is not { } lr) return;
        bool routed = lr.Routed;
        int picks = routed ? topK : 1, maxRank = lr.MaxRank, outDim = lr.Out;
        int[] ranks = lr.Ranks;
        float[] scalings = lr.Scalings;
        float* aAll = (float*)lr.A, bAll = (float*)lr.B;
        // t[j, 0..r) = g_j s_e A_e x; B rows of expert e start at bAll + e·Out·MaxRank.
        float* t = stackalloc float[picks * maxRank];
        float** bRows = stackalloc float*[picks];
        int* rs = stackalloc int[picks];
        for (int b = 0; b < batch; b++)
        {
            float* xb = x + (long)b * inDim, yb = y + b * yStride;
            int used = 0;
            for (int j = 0; j < picks; j++)
            {
                int e = routed ? experts[b * picks + j] : 0;
                int r = ranks[e];
                if (r == 0) continue;
                float g = (routed ? gates[b * picks + j] : 1f) * scalings[e];
                float* a = aAll + (long)e * maxRank * inDim;
                float* tj = t + used * maxRank;
                int i = 0;
                if (Avx.IsSupported)
                    for (; i <= r - 8; i += 8) EightDots(a + (long)i * inDim, xb, inDim, g, tj + i);
                for (; i < r; i++) tj[i] = DecodeMath.Dot(a + (long)i * inDim, xb, inDim) * g;
                bRows[used] = bAll + (long)e * outDim * maxRank;
                rs[used] = r;
                used++;
            }
            if (used == 0) continue;
            // Each output sums its k short products in one vector (ranks are usually multiples of 8): a call of Dot
            // per output and expert cost more than the arithmetic at these sizes. With every rank a multiple of 8, eight
            // outputs at a time share one reduction per expert.
            int o = 0;
            if (Avx.IsSupported && AllMultiplesOf8(rs, used))
                for (; o <= outDim - 8; o += 8)
                {
                    long row = (long)o * maxRank;
                    var sums = Vector256<float>.Zero;
                    for (int j = 0; j < used; j++) sums += EightRowSums(bRows[j] + row, maxRank, t + j * maxRank, rs[j]);
                    Vector256.Store(Vector256.Load(yb + o) + sums, yb + o);
                }
            for (; o < outDim; o++)
            {
                var acc = Vector256<float>.Zero;
                float sum = 0;
                long row = (long)o * maxRank;
                for (int j = 0; j < used; j++)
                {
                    float* br = bRows[j] + row, tj = t + j * maxRank;
                    int r = rs[j], i = 0;
                    for (; i <= r - 8; i += 8) acc = DecodeMath.MulAdd(Vector256.Load(br + i), Vector256.Load(tj + i), acc);
                    for (; i < r; i++) sum += br[i] * tj[i];
                }
                yb[o] += Vector256.Sum(acc) + sum;
            }
        }
    }

    // t[k] = g · (A[k] · x) for eight rows of A (n floats apart): one reduction for all eight rows (a call of Dot per
    // row cost more than its arithmetic at rank-8 sizes), then each row's scalar tail.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EightDots(float* a, float* x, int n, float g, float* t)
    {
        int vectors = n / 8 * 8;
        var sums = EightRowSums(a, n, x, vectors);
        if (vectors == n)
        {
            Vector256.Store(sums * g, t);
            return;
        }
        for (int k = 0; k < 8; k++)
        {
            float sum = sums.GetElement(k);
            for (int m = vectors; m < n; m++) sum += a[(long)k * n + m] * x[m];
            t[k] = sum * g;
        }
    }

    // [rows[k] · v over the first `length` floats, k = 0..7] for eight rows `stride` floats apart (length a multiple of
    // 8): one 8-float accumulator per row, then one reduction for all eight (DecodeMath.Sums).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> EightRowSums(float* rows, long stride, float* v, int length)
    {
        var a0 = Vector256<float>.Zero;
        var a1 = Vector256<float>.Zero;
        var a2 = Vector256<float>.Zero;
        var a3 = Vector256<float>.Zero;
        var a4 = Vector256<float>.Zero;
        var a5 = Vector256<float>.Zero;
        var a6 = Vector256<float>.Zero;
        var a7 = Vector256<float>.Zero;
        for (int i = 0; i < length; i += 8)
        {
            var vv = Vector256.Load(v + i);
            a0 = DecodeMath.MulAdd(Vector256.Load(rows + i), vv, a0);
            a1 = DecodeMath.MulAdd(Vector256.Load(rows + stride + i), vv, a1);
            a2 = DecodeMath.MulAdd(Vector256.Load(rows + 2 * stride + i), vv, a2);
            a3 = DecodeMath.MulAdd(Vector256.Load(rows + 3 * stride + i), vv, a3);
            a4 = DecodeMath.MulAdd(Vector256.Load(rows + 4 * stride + i), vv, a4);
            a5 = DecodeMath.MulAdd(Vector256.Load(rows + 5 * stride + i), vv, a5);
            a6 = DecodeMath.MulAdd(Vector256.Load(rows + 6 * stride + i), vv, a6);
            a7 = DecodeMath.MulAdd(Vector256.Load(rows + 7 * stride + i), vv, a7);
        }
        return DecodeMath.Sums(a0, a1, a2, a3, a4, a5, a6, a7);
    }

    private static bool AllMultiplesOf8(int* ranks, int count)
    {
        for (int j = 0; j < count; j++)
            if (ranks[j] % 8 != 0) return false;
        return true;
    }

    private static readonly object Merged = new(), Training = new(), Inference = new();

    /// <summary>
    /// The parameter a projection's weight lives in (null for modules the kernels do not read). With
    /// <see cref="State"/> it makes a kernel's signature of a model: a changed signature means the kernels read the
    /// model's addresses again.
    /// </summary>
    public static object? Identity(nn.Module<Tensor, Tensor> module) => module switch
    {
        TorchSharp.Modules.Linear plain => plain.weight,
        LoraLinear lora => lora.base_layer.weight,
        MixerLinear mixed => mixed.base_layer.weight,
        _ => null,
    };

    /// <summary>A token for the flags that change how an adapter runs (LoRA merged, training mode).</summary>
    public static object State(nn.Module<Tensor, Tensor> module) => module switch
    {
        LoraLinear { Merged: true } => Merged,
        _ => module.training ? Training : Inference,
    };

    private static bool TryPlain(TorchSharp.Modules.Linear plain, LowRankExperts? lowRank, Int8Weights? int8, out DecodeLinear linear)
    {
        linear = default;
        nint bias = 0;
        if (!NativeData.TryFloat(plain.weight, out nint weight) || (plain.bias is not null && !NativeData.TryFloat(plain.bias, out bias))) return false;
        int rows = (int)plain.weight!.shape[0];
        linear = new DecodeLinear(weight, bias, rows, lowRank, int8?.Find(weight, rows, (int)plain.weight.shape[1])?.View ?? default);
        return true;
    }

    /// <summary>An output head [vocab, hidden] (a Linear's weight or the tied embedding), from its int8 copy when there is one.</summary>
    public static DecodeLinear Head(nint weight, int vocab, int hidden, Int8Weights? int8) =>
        new(weight, 0, vocab, null, int8?.Find(weight, vocab, hidden)?.View ?? default);
}

/// <summary>
/// Stacked low-rank experts of one projection: A [E, MaxRank, in] and B [E, Out, MaxRank] (a plain LoRA is E = 1),
/// with each expert's rank and scaling; <paramref name="Routed"/> experts are weighted by the block's routing.
/// </summary>
internal sealed record LowRankExperts(nint A, nint B, int Out, int MaxRank, int[] Ranks, float[] Scalings, bool Routed);
