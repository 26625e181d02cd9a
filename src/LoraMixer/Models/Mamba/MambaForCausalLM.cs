using LoraMixer.Models.Decoding;
using LoraMixer.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Mamba;

/// <summary>
/// A Mamba-1 or Falcon-Mamba causal language model: <see cref="MambaModel"/> plus the LM head, which is
/// the embedding matrix when <c>tie_word_embeddings</c> is set. Prefill runs the chunked selective scan;
/// decoding with a <see cref="MambaCache"/> costs the same per token at any length.
/// </summary>
public sealed class MambaForCausalLM : nn.Module, ICausalLM
{
#pragma warning disable IDE1006
    /// <summary>The backbone (<c>backbone.</c> keys).</summary>
    public readonly MambaModel backbone;
    /// <summary>The LM head [vocab, hidden]; null when tied to the embeddings.</summary>
    public readonly nn.Module<Tensor, Tensor>? lm_head;
#pragma warning restore IDE1006

    /// <summary>A state-space model has no positional limit; this stands for "unbounded".</summary>
    public const int UnboundedPositions = 1 << 20;

    /// <summary>Creates the model with uninitialised weights on <paramref name="device"/>.</summary>
    public MambaForCausalLM(MambaConfig config, Device device) : base(nameof(MambaForCausalLM))
    {
        Config = config;
        Device = device;
        backbone = new MambaModel(config);
        if (!config.TieWordEmbeddings) lm_head = nn.Linear(config.HiddenSize, config.VocabSize, hasBias: false);
        RegisterComponents();
        if (device.type != DeviceType.CPU) this.to(device);
    }

    /// <summary>The configuration the model was built from.</summary>
    public MambaConfig Config { get; }

    /// <inheritdoc />
    public IModelFamily Family => MambaFamily.Instance;

    /// <inheritdoc />
    public Device Device { get; }

    /// <inheritdoc />
    public int VocabSize => Config.VocabSize;

    /// <inheritdoc />
    public int MaxPositionEmbeddings => UnboundedPositions;

    /// <summary>Scan used by every mixer for multi-token passes (chunked by default).</summary>
    public SelectiveScanMode ScanMode
    {
        get => backbone.layers[0].mixer.ScanMode;
        set { foreach (var layer in backbone.layers) layer.mixer.ScanMode = value; }
    }

    /// <summary>
    /// Whether multi-token passes on the CPU without gradients run the C# convolution, scan and gate
    /// (<see cref="MambaMixer.UseKernel"/>, the default); false runs the TorchSharp operations of <see cref="ScanMode"/>.
    /// </summary>
    public bool UsePrefillKernel
    {
        get => backbone.layers[0].mixer.UseKernel;
        set { foreach (var layer in backbone.layers) layer.mixer.UseKernel = value; }
    }

    /// <summary>Multi-token passes the prefill kernel has served since load, summed over the layers (diagnostics).</summary>
    public long PrefillKernelPasses => backbone.layers.Sum(layer => layer.mixer.KernelPasses);

    /// <summary>
    /// Whether single-position steps with a cache on the CPU (decoding, any batch size) run the C# decode kernel when
    /// gradients are off (plain model, LoRA or LoRA-Mixer projections); the default. False: every step runs the
    /// TorchSharp modules (the reference path). Both give the same logits to ~1e-5.
    /// </summary>
    public bool UseDecodeKernel { get; set; } = true;

    /// <summary>Decode steps the kernel has served since load (diagnostics: shows which path ran).</summary>
    public long DecodeKernelSteps { get; private set; }

    private MambaDecodeKernel? _decodeKernel;

    /// <summary>An empty cache; <paramref name="capacity"/> is ignored (the state does not grow).</summary>
    public IInferenceCache CreateCache(long batch, int capacity) =>
        new MambaCache(Config.NumHiddenLayers, batch, Config.IntermediateSize, Config.ConvKernel, Config.StateSize, Device);

    /// <inheritdoc />
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, IInferenceCache? cache = null, bool lastPositionOnly = false)
    {
        using var scope = NewDisposeScope();
        var state = cache as MambaCache;
        if (cache is not null && state is null) throw new ArgumentException("a Mamba model needs the cache it created", nameof(cache));
        if (state is not null && UseDecodeKernel && inputIds.ndim == 2 && inputIds.shape[1] == 1)
        {
            _decodeKernel ??= new MambaDecodeKernel(this);
            if (_decodeKernel.TryForward(inputIds, attentionMask, state) is { } fast)
            {
                DecodeKernelSteps++;
                return fast.MoveToOuterDisposeScope();
            }
        }
        var hidden = backbone.Forward(inputIds, attentionMask, state);
        if (lastPositionOnly) hidden = hidden.narrow(1, hidden.shape[1] - 1, 1);
        var logits = lm_head is null
            ? nn.functional.linear(hidden, backbone.EmbeddingWeight)
            : lm_head.forward(hidden);
        return logits.MoveToOuterDisposeScope();
    }
}
