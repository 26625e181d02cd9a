using LoraMixer.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Llama;

/// <summary>Pre-norm decoder block: attention then MLP, each with a residual (HF <c>LlamaDecoderLayer</c>).</summary>
public sealed class LlamaDecoderLayer : nn.Module
{
#pragma warning disable IDE1006
    /// <summary>Norm before attention.</summary>
    public readonly RmsNorm input_layernorm;
    /// <summary>Self-attention.</summary>
    public readonly LlamaAttention self_attn;
    /// <summary>Norm before the MLP.</summary>
    public readonly RmsNorm post_attention_layernorm;
    /// <summary>Feed-forward block.</summary>
    public readonly LlamaMlp mlp;
#pragma warning restore IDE1006

    /// <summary>Creates one block.</summary>
    public LlamaDecoderLayer(LlamaConfig config) : base(nameof(LlamaDecoderLayer))
    {
        input_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        self_attn = new LlamaAttention(config);
        post_attention_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        mlp = new LlamaMlp(config);
        RegisterComponents();
    }

    /// <summary>
    /// Observer of the normalised hidden state that enters the attention (the router input of the
    /// LoRA-Mixer); null for the plain model.
    /// </summary>
    public Action<BlockInput>? AttentionInputObserver { get; set; }

    /// <summary>Observer of the normalised hidden state that enters the MLP (the router input of MixLoRA); null for the plain model.</summary>
    public Action<Tensor>? MlpInputObserver { get; set; }

    /// <summary>One block over x [B, T, hidden]; <paramref name="tokenMask"/> [B, T] marks the real new tokens (for observers).</summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layerIndex, Tensor? tokenMask = null)
    {
        using var scope = NewDisposeScope();
        var normed = input_layernorm.forward(x);
        AttentionInputObserver?.Invoke(new BlockInput(normed, tokenMask, cache));
        var h = x + self_attn.Forward(normed, cos, sin, mask, cache, layerIndex);
        var mlpInput = post_attention_layernorm.forward(h);
        MlpInputObserver?.Invoke(mlpInput);
        var output = h + mlp.forward(mlpInput);
        return output.MoveToOuterDisposeScope();
    }
}
