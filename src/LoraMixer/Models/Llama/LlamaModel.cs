using LoraMixer.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Llama;

/// <summary>Embeddings, decoder blocks and the final norm (HF <c>LlamaModel</c>, the <c>model.</c> prefix).</summary>
public sealed class LlamaModel : nn.Module
{
#pragma warning disable IDE1006
    /// <summary>Token embeddings [vocab, hidden].</summary>
    public readonly nn.Module<Tensor, Tensor> embed_tokens;
    /// <summary>Decoder blocks.</summary>
    public readonly TorchSharp.Modules.ModuleList<LlamaDecoderLayer> layers;
    /// <summary>Final norm.</summary>
    public readonly RmsNorm norm;
#pragma warning restore IDE1006

    private readonly RotaryEmbedding _rotary;
    private readonly LlamaConfig _config;

    // Large finite negative instead of -inf so that fully masked rows (left padding) give a uniform
    // softmax rather than NaN; those rows are never read.
    private const float MaskedScore = -1e9f;

    /// <summary>Creates the model with uninitialised weights (load them with <see cref="ModelLoader"/>).</summary>
    public LlamaModel(LlamaConfig config, Device device) : base(nameof(LlamaModel))
    {
        _config = config;
        embed_tokens = nn.Embedding(config.VocabSize, config.HiddenSize);
        layers = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new LlamaDecoderLayer(config)).ToArray());
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps);
        _rotary = new RotaryEmbedding(config.HeadDim, config.RopeTheta, config.RopeScaling, device);
        RegisterComponents();
    }

    /// <summary>The embedding matrix (also the LM head when embeddings are tied).</summary>
    public Tensor EmbeddingWeight => ((TorchSharp.Modules.Embedding)embed_tokens).weight!;

    /// <summary>
    /// Hidden states [B, T, hidden] for ids [B, T]. <paramref name="attentionMask"/> [B, past + T] marks
    /// real tokens with 1 and padding with 0 (null: no padding). Positions come from the mask (left
    /// padding is skipped, as HF does) or run on from the cache length.
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask, KvCache? cache)
    {
        using var scope = NewDisposeScope();
        long b = inputIds.shape[0], t = inputIds.shape[1];
        int past = cache?.Length ?? 0;
        if (past + t > _config.MaxPositionEmbeddings)
            throw new ArgumentException(
                $"sequence of {past + t} tokens exceeds max_position_embeddings {_config.MaxPositionEmbeddings} of this model; shorten the prompt or lower --max-tokens");

        Tensor positions;
        Tensor? mask = null;
        if (attentionMask is null)
        {
            positions = arange(past, past + t, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0).expand(b, t);
            if (past > 0 && t > 1) mask = BuildMask(null, b, t, past, inputIds.device);
        }
        else
        {
            var cumulative = attentionMask.to_type(ScalarType.Int64).cumsum(-1) - 1;
            positions = cumulative.clamp_min(0).narrow(1, past, t);
            mask = BuildMask(attentionMask, b, t, past, inputIds.device);
        }

        var (cos, sin) = _rotary.CosSin(positions);
        var x = embed_tokens.forward(inputIds);
        var tokenMask = attentionMask?.narrow(1, past, t);
        for (int i = 0; i < layers.Count; i++)
            x = layers[i].Forward(x, cos, sin, mask, cache, i, tokenMask);
        cache?.Advance((int)t);
        return norm.forward(x).MoveToOuterDisposeScope();
    }

    private static Tensor BuildMask(Tensor? attentionMask, long b, long t, int past, Device device)
    {
        long s = past + t;
        var query = arange(past, s, dtype: ScalarType.Int64, device: device).unsqueeze(1); // [T, 1]
        var key = arange(0, s, dtype: ScalarType.Int64, device: device).unsqueeze(0);       // [1, S]
        var allowed = key.le(query).unsqueeze(0).unsqueeze(0);                              // [1, 1, T, S]
        if (attentionMask is not null)
            allowed = allowed.logical_and(attentionMask.to_type(ScalarType.Bool).view(b, 1, 1, s));
        return zeros(allowed.shape, device: device).masked_fill(allowed.logical_not(), MaskedScore);
    }
}
