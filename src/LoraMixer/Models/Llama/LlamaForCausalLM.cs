using LoraMixer.Models.Decoding;
using LoraMixer.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Llama;

/// <summary>
/// A Llama-family causal language model (Llama, Mistral, Qwen2, SmolLM): <see cref="LlamaModel"/> plus
/// the LM head, which is the embedding matrix when <c>tie_word_embeddings</c> is set.
/// </summary>
public sealed class LlamaForCausalLM : nn.Module, ICausalLM
{
#pragma warning disable IDE1006
    /// <summary>The decoder (<c>model.</c> keys).</summary>
    public readonly LlamaModel model;
    /// <summary>The LM head [vocab, hidden]; null when tied to the embeddings.</summary>
    public readonly nn.Module<Tensor, Tensor>? lm_head;
#pragma warning restore IDE1006

    /// <summary>Creates the model with uninitialised weights on <paramref name="device"/>.</summary>
    public LlamaForCausalLM(LlamaConfig config, Device device) : base(nameof(LlamaForCausalLM))
    {
        Config = config;
        Device = device;
        model = new LlamaModel(config, device);
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
        RegisterComponents();
    }

    /// <summary>
    /// Whether single-position steps with a cache on the CPU (decoding, any batch size), and short one-sequence
    /// prompts whose last position's logits are asked for (a generation's prefill), run the C# decode kernel when it
    /// covers the model and gradients are off; the default.
    /// False: every step runs the TorchSharp modules (the reference path). Both give the same logits to ~1e-5.
    /// </summary>
    public bool UseDecodeKernel { get; set; } = true;

    /// <summary>Decode steps the kernel has served since load (diagnostics: shows which path ran).</summary>
    public long DecodeKernelSteps { get; private set; }

    /// <summary>Short prompts (one sequence, last position's logits) the kernel has prefilled since load (diagnostics).</summary>
    public long DecodeKernelPrefills { get; private set; }

    private LlamaDecodeKernel? _decodeKernel;

    /// <summary>The configuration the model was built from.</summary>
    public LlamaConfig Config { get; }

    /// <inheritdoc />
    public IModelFamily Family => LlamaFamily.Instance;

    /// <inheritdoc />
    public Device Device { get; }

    /// <inheritdoc />
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc />
    public int MaxPositionEmbeddings => Config.MaxPositionEmbeddings;

    /// <inheritdoc />
    public IInferenceCache CreateCache(long batch, int capacity) =>
        new KvCache(Config.NumHiddenLayers, batch, Config.NumKeyValueHeads, Config.HeadDim, capacity, Device);

    /// <summary>
    /// Serving: one decode-kernel step where row b continues sequence <paramref name="slots"/>[b] of
    /// <paramref name="cache"/>, which holds <paramref name="lengths"/>[b] positions (see
    /// <see cref="LlamaDecodeKernel.TryForwardRows"/>); false when the kernel is off or does not cover the step.
    /// </summary>
    internal bool TryDecodeRows(long[] ids, int[] slots, int[] lengths, KvCache cache, float[] logits)
    {
        if (!UseDecodeKernel) return false;
        _decodeKernel ??= new LlamaDecodeKernel(this);
        if (!_decodeKernel.TryForwardRows(ids, slots, lengths, cache, logits)) return false;
        DecodeKernelSteps++;
        return true;
    }

    /// <summary>
    /// Serving: the prompts of several requests in one decode-kernel pass, each into its own sequence of
    /// <paramref name="cache"/> (see <see cref="LlamaDecodeKernel.TryPrefillRows"/>); false when the kernel is off or
    /// does not cover them.
    /// </summary>
    internal bool TryPrefillRows(long[] ids, int[] slots, int[] positions, int[] logitRows, KvCache cache, Span<float> logits)
    {
        if (!UseDecodeKernel) return false;
        _decodeKernel ??= new LlamaDecodeKernel(this);
        if (!_decodeKernel.TryPrefillRows(ids, slots, positions, logitRows, cache, logits)) return false;
        DecodeKernelPrefills++;
        return true;
    }

    /// <inheritdoc />
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, IInferenceCache? cache = null, bool lastPositionOnly = false)
    {
        using var scope = NewDisposeScope();
        var kv = cache as KvCache;
        if (cache is not null && kv is null) throw new ArgumentException("a Llama-family model needs the cache it created", nameof(cache));
        if (kv is not null && UseDecodeKernel && inputIds.ndim == 2 && inputIds.shape[1] == 1)
        {
            _decodeKernel ??= new LlamaDecodeKernel(this);
            if (_decodeKernel.TryForward(inputIds, attentionMask, kv) is { } fast)
            {
                DecodeKernelSteps++;
                return fast.MoveToOuterDisposeScope();
            }
        }
        if (kv is not null && UseDecodeKernel && lastPositionOnly && attentionMask is null && inputIds.ndim == 2 && inputIds.shape[0] == 1
            && inputIds.shape[1] > 1 && inputIds.shape[1] <= LlamaDecodeKernel.MaxPrefillTokens)
        {
            _decodeKernel ??= new LlamaDecodeKernel(this);
            if (_decodeKernel.TryPrefill(inputIds, kv) is { } fast)
            {
                DecodeKernelPrefills++;
                return fast.MoveToOuterDisposeScope();
            }
        }
        var hidden = model.Forward(inputIds, attentionMask, kv);
        if (lastPositionOnly) hidden = hidden.narrow(1, hidden.shape[1] - 1, 1);
        var logits = lm_head is null
            ? nn.functional.linear(hidden, model.EmbeddingWeight)
            : lm_head.forward(hidden);
        return logits.MoveToOuterDisposeScope();
    }
}
