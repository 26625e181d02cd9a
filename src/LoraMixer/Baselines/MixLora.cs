using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Baselines;

/// <summary>
/// The MixLoRA baseline (Li et al., 2024): LoRA experts on every MLP projection (gate/up/down) with one top-k
/// router per block reading the MLP's normalised input, trained with the Switch auxiliary loss
/// <c>0.01·E·Σ f_i P_i</c>, plus one plain LoRA on the attention projections. Unlike the LoRA-Mixer, experts
/// are not tied to tasks: they are trained from scratch together with the routers on the mixed data.
/// Llama family only (Mamba blocks have no MLP).
/// </summary>
public sealed class MixLora : IDisposable
{
    /// <summary>The MLP projections that hold the experts.</summary>
    public static readonly IReadOnlyList<string> MlpProjections = new[] { "gate_proj", "up_proj", "down_proj" };

    /// <summary>Weight of the Switch auxiliary (load balancing) loss.</summary>
    public const double AuxLossWeight = 0.01;

    private readonly IReadOnlyDictionary<string, LoraLinear> _attention;
    private readonly IReadOnlyList<MixerLinear> _experts;
    private readonly IReadOnlyList<RoutingSlot> _slots;

    private MixLora(ICausalLM model, IReadOnlyDictionary<string, LoraLinear> attention, IReadOnlyList<MixerLinear> experts, IReadOnlyList<RoutingSlot> slots)
    {
        Model = model;
        _attention = attention;
        _experts = experts;
        _slots = slots;
    }

    /// <summary>The adapted model.</summary>
    public ICausalLM Model { get; }

    /// <summary>One router slot per block (MLP input), in layer order.</summary>
    public IReadOnlyList<RoutingSlot> Slots => _slots;

    /// <summary>The MLP projections with their experts.</summary>
    public IReadOnlyList<MixerLinear> ExpertProjections => _experts;

    /// <summary>
    /// Adapts <paramref name="model"/>: <paramref name="experts"/> fresh LoRA experts of rank
    /// <paramref name="rank"/> on each MLP projection, routed top-<paramref name="topK"/> per token, and a
    /// rank-<paramref name="rank"/> LoRA on q/k/v/o (A Kaiming-uniform, B zero; routers zero).
    /// </summary>
    public static MixLora Attach(ICausalLM model, int experts, int rank, int topK, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(experts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(rank, 1);
        var routing = new RoutingSettings(RoutingMode.TopK, topK);
        routing.Validate(experts);
        using (manual_seed(seed)) { }
        var (_, hidden, layers) = ModelStructure.Describe(model);
        var slots = new RoutingSlot[layers];
        for (int i = 0; i < layers; i++)
        {
            var router = new Router(experts, hidden, model.Device);
            int layer = i;
            string name = ModelStructure.AttachMlpRouter(model, i, router, h => slots[layer].Route(h));
            slots[i] = new RoutingSlot(name, i, router, routing);
        }
        var layout = Enumerable.Repeat<(int, double)?>((rank, 2.0), experts).ToArray(); // lora_alpha = 2r
        var mixed = new List<MixerLinear>();
        foreach (var target in TargetLinears.Find(model, name => MlpProjections.Contains(name[(name.LastIndexOf('.') + 1)..])))
        {
            var linear = new MixerLinear(target.ModuleName, target.Linear, layout, slots[target.LayerIndex], ownsSlot: false, dropout: 0.0);
            linear.InitializeExperts();
            target.Replace(linear);
            mixed.Add(linear);
        }
        var attention = AdapterInjector.Inject(model, new LoraConfig
        {
            R = rank, LoraAlpha = 2 * rank, TargetModules = TargetLinears.AttentionProjections, LoraDropout = 0.0,
        });
        return new MixLora(model, attention, mixed, slots);
    }

    /// <summary>Every trainable tensor: attention LoRA, MLP experts and routers.</summary>
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

    /// <summary>Trains everything on <paramref name="records"/> with top-k routing and the Switch auxiliary loss.</summary>
    public TrainingSummary Train(ITokenizer tokenizer, IReadOnlyList<TrainingRecord> records, FineTuneSettings settings,
        IProgress<TrainingProgress>? progress = null, CancellationToken ct = default)
    {
        settings.Validate();
        var data = EncodedData.Create(tokenizer, records, settings, null);
        var parameters = Parameters();
        foreach (var (_, p) in parameters) p.requires_grad = true;
        SetRecording(true);
        try
        {
            var objective = new CausalLmObjective(Model, parameters, data.Train, data.Eval, settings.BatchSize, settings.Trainer.Seed, tokenizer.EosId ?? 0)
            {
                BeforeForward = _ => DisposeAll(TakeRecorded()),
                ExtraLoss = (batch, _, _) =>
                {
                    var probabilities = TakeRecorded();
                    try
                    {
                        return RoutingLoss.Compute(probabilities, batch.AttentionMask, AuxLossWeight, lambda: 0, entropySign: 1);
                    }
                    finally
                    {
                        DisposeAll(probabilities);
                    }
                },
            };
            return new Trainer(settings.Trainer, objective).Run(progress, ct);
        }
        finally
        {
            SetRecording(false);
            foreach (var (_, p) in parameters) p.requires_grad = false;
        }
    }

    private void SetRecording(bool on)
    {
        foreach (var s in _slots)
        {
            s.Record = on;
            if (!on) DisposeAll(s.TakeRecorded());
        }
    }

    private IReadOnlyList<Tensor> TakeRecorded() => _slots.SelectMany(s => s.TakeRecorded()).ToArray();

    private static void DisposeAll(IEnumerable<Tensor> tensors)
    {
        foreach (var t in tensors) t.Dispose();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var s in _slots) s.Dispose();
    }
}
