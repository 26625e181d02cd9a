using LoraMixer.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Mamba;

/// <summary>Embeddings, Mamba blocks and the final norm (HF <c>MambaModel</c>, the <c>backbone.</c> prefix).</summary>
public sealed class MambaModel : nn.Module
{
#pragma warning disable IDE1006
    /// <summary>Token embeddings [vocab, hidden].</summary>
    public readonly nn.Module<Tensor, Tensor> embeddings;
    /// <summary>The blocks.</summary>
    public readonly TorchSharp.Modules.ModuleList<MambaBlock> layers;
    /// <summary>Final norm.</summary>
    public readonly RmsNorm norm_f;
#pragma warning restore IDE1006

    /// <summary>Creates the backbone with uninitialised weights.</summary>
    public MambaModel(MambaConfig config) : base(nameof(MambaModel))
    {
        embeddings = nn.Embedding(config.VocabSize, config.HiddenSize);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new MambaBlock(config)).ToArray());
        norm_f = new RmsNorm(config.HiddenSize, config.LayerNormEpsilon);
        RegisterComponents();
    }

    /// <summary>The embedding matrix (also the LM head when embeddings are tied).</summary>
    public Tensor EmbeddingWeight => ((TorchSharp.Modules.Embedding)embeddings).weight!;

    /// <summary>
    /// Hidden states [B, T, hidden] for ids [B, T] following the state in <paramref name="cache"/>.
    /// <paramref name="attentionMask"/> [B, past + T] (1 real, 0 padding; only its last T columns matter,
    /// since the past lives in the cache) zeroes padded positions' inputs to the convolution and scan.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask, MambaCache? cache)
    {
        using var scope = NewDisposeScope();
        long t = inputIds.shape[1];
        var mask = attentionMask?.narrow(1, attentionMask.shape[1] - t, t);
        var x = embeddings.forward(inputIds);
        for (int i = 0; i < layers.Count; i++)
            x = layers[i].Forward(x, mask, cache, i);
        cache?.Advance((int)t);
        return norm_f.forward(x).MoveToOuterDisposeScope();
    }
}
