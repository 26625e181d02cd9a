using System.Runtime.CompilerServices;
using LoraMixer.Baselines;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Models.Decoding;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Quantization;

/// <summary>
/// <c>--quantize int8</c>: weight-only int8 for inference on the CPU. Every projection of the base model (Llama q/k/v/o and
/// gate/up/down, Mamba in/x/dt/out; under a LoRA or a LoRA-Mixer, its frozen base weight) and the output head get an int8
/// copy with one scale per <see cref="DefaultGroupSize"/> inputs (<see cref="Int8Matrix"/>), and their fp32 weights are
/// replaced by the dequantized values. The decode kernels then read a quarter of the bytes per token; every other path
/// (long prompts, the reference modules) computes with the same dequantized values, so both agree as before.
/// LoRA experts, routers, norms and the embedding lookup stay fp32.
/// </summary>
public static class Int8Quantizer
{
    /// <summary>Inputs per scale (llama.cpp's Q8_0 block size).</summary>
    public const int DefaultGroupSize = 32;

    private static readonly ConditionalWeakTable<ICausalLM, Int8Weights> Quantized = new();

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="mode"/> (a <c>--quantize</c> value) is null or "int8".</summary>
    public static void CheckMode(string? mode)
    {
        if (mode is not null and not "int8") throw new ArgumentException($"--quantize: '{mode}' is not supported; the one choice is int8 (or leave it out for fp32)");
    }

    /// <summary>
    /// Quantizes <paramref name="model"/>'s projections and head in place. Apply adapters to be merged first: a weight
    /// changed after quantization (a LoRA merged into it) is read in fp32 again, since its int8 copy no longer matches.
    /// </summary>
    public static QuantizationSummary Quantize(ICausalLM model, int groupSize = DefaultGroupSize)
    {
        if (model.Device.type != DeviceType.CPU)
            throw new NotSupportedException($"int8 weights serve the CPU decode kernels; the model is on {model.Device} (drop --quantize, or use --device cpu)");
        if (Quantized.TryGetValue(model, out _)) throw new InvalidOperationException("the model is already quantized");
        var matrices = new Dictionary<nint, Int8Matrix>();
        long fp32Bytes = 0;
        using (NewDisposeScope())
        using (no_grad())
        {
            foreach (var weight in Weights(model))
            {
                if (weight.ndim != 2 || !NativeData.TryFloat(weight, out nint data))
                    throw new NotSupportedException($"int8 quantization needs contiguous fp32 weights; found {weight.dtype} {string.Join('x', weight.shape)}");
                if (matrices.ContainsKey(data)) continue; // a tied head
                unsafe
                {
                    matrices[data] = Int8Matrix.QuantizeInPlace((float*)data, (int)weight.shape[0], (int)weight.shape[1], groupSize);
                }
                fp32Bytes += weight.numel() * sizeof(float);
            }
        }
        Quantized.Add(model, new Int8Weights(matrices));
        return new QuantizationSummary(matrices.Count, fp32Bytes, matrices.Values.Sum(m => m.Bytes), groupSize);
    }

    /// <summary>The int8 copies of <paramref name="model"/>'s weights, or null when it was not quantized.</summary>
    internal static Int8Weights? Of(ICausalLM model) => Quantized.TryGetValue(model, out var weights) ? weights : null;

    private static IEnumerable<Tensor> Weights(ICausalLM model)
    {
        switch (model)
        {
            case LlamaForCausalLM llama:
                foreach (var layer in llama.model.layers)
                {
                    var a = layer.self_attn;
                    var m = layer.mlp;
                    foreach (var projection in new[] { a.q_proj, a.k_proj, a.v_proj, a.o_proj, m.gate_proj, m.up_proj, m.down_proj })
                        yield return BaseWeight(projection);
                }
                yield return llama.lm_head is null ? llama.model.EmbeddingWeight : BaseWeight(llama.lm_head);
                break;
            case MambaForCausalLM mamba:
                foreach (var block in mamba.backbone.layers)
                {
                    var m = block.mixer;
                    foreach (var projection in new[] { m.in_proj, m.x_proj, m.dt_proj, m.out_proj })
                        yield return BaseWeight(projection);
                }
                yield return mamba.lm_head is null ? mamba.backbone.EmbeddingWeight : BaseWeight(mamba.lm_head);
                break;
            default:
                throw new NotSupportedException($"int8 quantization covers Llama-family and Mamba models, not {model.GetType().Name}");
        }
    }

    // The frozen base weight of a projection, whatever adapts it.
    private static Tensor BaseWeight(nn.Module<Tensor, Tensor> projection) => projection switch
    {
        TorchSharp.Modules.Linear plain => plain.weight!,
        LoraLinear lora => lora.base_layer.weight!,
        MixerLinear mixed => mixed.base_layer.weight!,
        MixLoraLinear mixLora => mixLora.base_layer.weight!,
        _ => throw new NotSupportedException($"int8 quantization cannot read a {projection.GetType().Name} projection"),
    };
}
