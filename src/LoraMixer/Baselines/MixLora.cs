using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Runtime;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Baselines;

/// <summary>
/// The MixLoRA baseline (Li et al., 2024; TUDB-Labs/MixLoRA): each block's feed-forward network becomes a
/// sparse mixture <c>Σ_j g_j FFN_{e_j}(x)</c> of E experts, each the frozen FFN with its own LoRA on gate, up
/// and down (<see cref="MixLoraLinear"/>); a router per block (W_g initialised N(0, 0.02²)) reads the FFN's
/// normalised input, keeps the top-k softmax probabilities and renormalises them over the chosen experts.
/// Training adds the Mixtral load-balancing loss (<see cref="LoadBalancingLoss"/>) with coefficient 0.01, and
/// a plain LoRA on the attention projections trains alongside. Defaults are the paper's: 8 experts, top-2.
/// Unlike the LoRA-Mixer, experts are not tied to tasks. Llama family only (Mamba blocks have no FFN).
/// </summary>
public sealed class MixLora : IDisposable
{
    /// <summary>The MLP projections that hold the experts.</summary>
    public static readonly IReadOnlyList<string> MlpProjections = new[] { "gate_proj", "up_proj", "down_proj" };

    /// <summary>Weight of the load-balancing loss (MixLoRA's <c>router_aux_loss_coef</c> in its documented configuration).</summary>
    public const double AuxLossWeight = 0.01;

    /// <summary>MixLoRA's number of experts per block.</summary>
    public const int DefaultExperts = 8;

    /// <summary>MixLoRA's experts per token.</summary>
    public const int DefaultTopK = 2;

    /// <summary>Standard deviation of the router's initial weights (MixLoRA's <c>router_init_range</c>).</summary>
    public const double RouterInitStd = 0.02;

    private readonly IReadOnlyDictionary<string, LoraLinear> _attention;
    private readonly IReadOnlyList<MixLoraLinear> _experts;
    private readonly IReadOnlyList<RoutingSlot> _slots;

    private MixLora(ICausalLM model, IReadOnlyDictionary<string, LoraLinear> attention, IReadOnlyList<MixLoraLinear> experts, IReadOnlyList<RoutingSlot> slots, int topK)
    {
        Model = model;
        _attention = attention;
        _experts = experts;
        _slots = slots;
        TopK = topK;
    }

    /// <summary>Experts per token.</summary>
    public int TopK { get; }

    /// <summary>The adapted model.</summary>
    public ICausalLM Model { get; }

    /// <summary>One router slot per block (MLP input), in layer order.</summary>
    public IReadOnlyList<RoutingSlot> Slots => _slots;

    /// <summary>The MLP projections with their experts.</summary>
    public IReadOnlyList<MixLoraLinear> ExpertProjections => _experts;

    /// <summary>
    /// Adapts <paramref name="model"/>: <paramref name="experts"/> fresh LoRA-adapted FFN experts of rank
    /// <paramref name="rank"/> (alpha 2r) per block, routed top-<paramref name="topK"/> per token, and a
    /// rank-<paramref name="rank"/> LoRA on q/k/v/o (A Kaiming-uniform, B zero).
    /// </summary>
    public static MixLora Attach(ICausalLM model, int experts, int rank, int topK, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(experts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(rank, 1);
        var routing = new RoutingSettings(RoutingMode.TopK, topK, Renormalize: true);
        routing.Validate(experts);
        manual_seed(seed); // the attention LoRA's initialisation
        var generator = new Generator((ulong)seed);
        var (_, hidden, layers) = ModelStructure.Describe(model);
        var slots = new RoutingSlot[layers];
        for (int i = 0; i < layers; i++)
        {
            var router = new Router(experts, hidden, model.Device);
            using (NewDisposeScope())
            using (no_grad())
                router.weight.copy_(randn(router.weight.shape, generator: generator) * RouterInitStd);
            int layer = i;
            string name = ModelStructure.AttachMlpRouter(model, i, router, h => slots[layer].Route(h));
            slots[i] = new RoutingSlot(name, i, router, routing);
        }
        var mixed = new List<MixLoraLinear>();
        foreach (var target in TargetLinears.Find(model, name => MlpProjections.Contains(name[(name.LastIndexOf('.') + 1)..])))
        {
            var linear = new MixLoraLinear(target.ModuleName, target.Linear, experts, rank, scaling: 2.0, slots[target.LayerIndex],
                combines: target.ShortName == "down_proj", generator);
            target.Replace(linear);
            mixed.Add(linear);
        }
        if (mixed.Count != 3 * layers) throw new NotSupportedException("MixLoRA needs gate_proj, up_proj and down_proj in every block");
        var attention = AdapterInjector.Inject(model, new LoraConfig
        {
            R = rank, LoraAlpha = 2 * rank, TargetModules = TargetLinears.AttentionProjections, LoraDropout = 0.0,
        });
        return new MixLora(model, attention, mixed, slots, topK);
    }

    /// <summary>
    /// Mixtral's load-balancing loss as MixLoRA computes it, over the real tokens of every layer together:
    /// <c>E · Σ_{j,i} f_{j,i} P_i</c>, where f_{j,i} is the fraction of tokens whose j-th choice is expert i
    /// and P_i the mean router probability of expert i (f carries no gradient). Perfect balance gives k.
    /// </summary>
    /// <param name="probabilities">Router softmax per layer, [B, T, E] each.</param>
    /// <param name="tokenMask">[B, T], non-zero for real tokens.</param>
    /// <param name="topK">Experts per token.</param>
    public static Tensor LoadBalancingLoss(IReadOnlyList<Tensor> probabilities, Tensor tokenMask, int topK)
    {
        if (probabilities.Count == 0) throw new ArgumentException("the load-balancing loss needs the router probabilities of at least one layer");
        using var scope = NewDisposeScope();
        long experts = probabilities[0].shape[^1];
        var p = cat(probabilities.Select(q => q.reshape(-1, experts)).ToArray(), 0);                // [L·N, E]
        var mask = tokenMask.reshape(-1).to(p.dtype).to(p.device).repeat(probabilities.Count);       // [L·N]
        if (mask.shape[0] != p.shape[0]) throw new ArgumentException($"token mask covers {tokenMask.numel()} tokens, routing has {p.shape[0] / probabilities.Count}");
        var count = mask.sum().clamp_min(1);
        var (_, chosen) = p.topk(topK, dim: -1);                                                    // [L·N, k]
        var f = (nn.functional.one_hot(chosen, experts).to(p.dtype) * mask.view(-1, 1, 1)).sum(dim: 0) / count;  // [k, E]
        var meanP = (p * mask.unsqueeze(-1)).sum(dim: 0) / count;                                          // [E]
        return (experts * (f.detach() * meanP.unsqueeze(0)).sum()).MoveToOuterDisposeScope();
    }

    /// <summary>Every trainable tensor: attention LoRA, FFN experts and routers.</summary>
    public IReadOnlyList<KeyValuePair<string, Parameter>> Parameters() =>
        _attention.SelectMany(a => new[]
            {
                new KeyValuePair<string, Parameter>(a.Key + ".lora_A", a.Value.lora_A),
                new KeyValuePair<string, Parameter>(a.Key + ".lora_B", a.Value.lora_B),
            })
            .Concat(_experts.SelectMany(p => new[]
            {
                new KeyValuePair<string, Parameter>(p.ModuleName + ".lora_A", p.lora_A),
                new KeyValuePair<string, Parameter>(p.ModuleName + ".lora_B", p.lora_B),
            }))
            .Concat(_slots.Select(s => new KeyValuePair<string, Parameter>(s.Name + ".weight", s.Router.weight)))
            .ToArray();

    /// <summary>Number of trainable values.</summary>
    public long ParameterCount => Parameters().Sum(p => p.Value.numel());

    /// <summary>Trains everything on <paramref name="records"/> with top-k routing and the load-balancing loss.</summary>
    public TrainingSummary Train(ITokenizer tokenizer, IReadOnlyList<TrainingRecord> records, FineTuneSettings settings,
        IProgress<TrainingProgress>? progress = null, CancellationToken ct = default) =>
        AuxiliaryLossTraining.Run(Model, Parameters(), tokenizer, records, settings, SetRecording, TakeRecorded,
            (probabilities, mask) => LoadBalancingLoss(probabilities, mask, TopK) * AuxLossWeight, progress, ct);

    private void SetRecording(bool on)
    {
        foreach (var s in _slots)
        {
            s.Record = on;
            if (!on) s.TakeRecorded().DisposeAll();
        }
    }

    private IReadOnlyList<Tensor> TakeRecorded() => _slots.SelectMany(s => s.TakeRecorded()).ToArray();

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var s in _slots) s.Dispose();
    }
}
