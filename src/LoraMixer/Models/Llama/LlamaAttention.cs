using LoraMixer.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Llama;

/// <summary>
/// Multi-head attention with grouped key/value heads and rotary positions (HF <c>LlamaAttention</c>).
/// The four projections are plain linears that adapter code may replace (LoRA, the mixer).
/// </summary>
public sealed class LlamaAttention : nn.Module
{
#pragma warning disable IDE1006 // HF names: parameter names equal the safetensors keys
    /// <summary>Query projection [heads·head_dim, hidden].</summary>
    public nn.Module<Tensor, Tensor> q_proj;
    /// <summary>Key projection [kv_heads·head_dim, hidden].</summary>
    public nn.Module<Tensor, Tensor> k_proj;
    /// <summary>Value projection [kv_heads·head_dim, hidden].</summary>
    public nn.Module<Tensor, Tensor> v_proj;
    /// <summary>Output projection [hidden, heads·head_dim].</summary>
    public nn.Module<Tensor, Tensor> o_proj;
#pragma warning restore IDE1006

    private readonly int _heads, _kvHeads, _headDim;

    /// <summary>Creates the attention of one decoder layer.</summary>
    public LlamaAttention(LlamaConfig config) : base(nameof(LlamaAttention))
    {
        _heads = config.NumAttentionHeads;
        _kvHeads = config.NumKeyValueHeads;
        _headDim = config.HeadDim;
        q_proj = nn.Linear(config.HiddenSize, _heads * _headDim, hasBias: config.QkvBias);
        k_proj = nn.Linear(config.HiddenSize, _kvHeads * _headDim, hasBias: config.QkvBias);
        v_proj = nn.Linear(config.HiddenSize, _kvHeads * _headDim, hasBias: config.QkvBias);
        o_proj = nn.Linear(_heads * _headDim, config.HiddenSize, hasBias: config.OutputBias);
        RegisterComponents();
    }

    /// <summary>
    /// x [B, T, hidden] → [B, T, hidden]. <paramref name="mask"/> is additive [B, 1, T, S] or null for
    /// plain causal attention; <paramref name="cache"/> receives this layer's keys and values.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layerIndex)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        var q = q_proj.forward(x).view(b, t, _heads, _headDim).transpose(1, 2);
        var k = k_proj.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        var v = v_proj.forward(x).view(b, t, _kvHeads, _headDim).transpose(1, 2);
        q = RotaryEmbedding.Apply(q, cos, sin);
        k = RotaryEmbedding.Apply(k, cos, sin);
        if (cache is not null) (k, v) = cache.Append(layerIndex, k, v);
        if (_kvHeads != _heads)
        {
            // HF repeat_kv: each key/value head serves heads/kv_heads consecutive query heads.
            k = k.repeat_interleave(_heads / _kvHeads, dim: 1);
            v = v.repeat_interleave(_heads / _kvHeads, dim: 1);
        }
        bool causal = mask is null && t > 1;
        var attended = is_grad_enabled() && (q.requires_grad || v.requires_grad)
            ? ExplicitAttention(q, k, v, mask, causal)
            : nn.functional.scaled_dot_product_attention(q, k, v, mask, 0.0, causal);
        var merged = attended.transpose(1, 2).reshape(b, t, _heads * _headDim);
        return o_proj.forward(merged).MoveToOuterDisposeScope();
    }

    // softmax(q kᵀ/√d + mask) v written out: the same function as SDPA, but libtorch's CPU backward of
    // SDPA is several times slower than autograd through these three ops, so training uses this path.
    private Tensor ExplicitAttention(Tensor q, Tensor k, Tensor v, Tensor? mask, bool causal)
    {
        var scores = q.matmul(k.transpose(-1, -2)) * (1.0 / Math.Sqrt(_headDim));
        if (mask is not null) scores = scores + mask;
        else if (causal)
        {
            long t = q.shape[2], s = k.shape[2];
            var future = ones(t, s, dtype: ScalarType.Bool, device: q.device).triu(s - t + 1);
            scores = scores.masked_fill(future, float.NegativeInfinity);
        }
        return scores.softmax(-1).matmul(v);
    }
}
