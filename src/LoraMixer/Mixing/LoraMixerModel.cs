using LoraMixer.Lora;
using LoraMixer.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// A base model whose target projections are <see cref="MixerLinear"/>s with their routers: the
/// LoRA-Mixer. The base stays frozen; routers and experts are trainable on request.
/// </summary>
public sealed class LoraMixerModel : IDisposable
{
    private readonly List<MixerLinear> _projections;
    private readonly List<RoutingSlot> _slots;

    private LoraMixerModel(ICausalLM model, MixerConfig config, IReadOnlyList<LoraConfig> expertConfigs,
        List<MixerLinear> projections, List<RoutingSlot> slots)
    {
        Model = model;
        Config = config;
        ExpertConfigs = expertConfigs;
        _projections = projections;
        _slots = slots;
    }

    /// <summary>The PEFT config of each expert (written with the expert when the mixer is saved).</summary>
    public IReadOnlyList<LoraConfig> ExpertConfigs { get; }

    /// <summary>The adapted base model (use it for forward passes and generation).</summary>
    public ICausalLM Model { get; }

    /// <summary>The mixer's configuration.</summary>
    public MixerConfig Config { get; private set; }

    /// <summary>Expert names in router order.</summary>
    public IReadOnlyList<string> ExpertNames => Config.Experts.Select(e => e.Name).ToArray();

    /// <summary>Number of experts E.</summary>
    public int Experts => Config.Experts.Count;

    /// <summary>Every mixed projection, in module order.</summary>
    public IReadOnlyList<MixerLinear> Projections => _projections;

    /// <summary>Every router slot (one per block, or one per projection in projection scope).</summary>
    public IReadOnlyList<RoutingSlot> Slots => _slots;

    /// <summary>
    /// Replaces the target projections of <paramref name="model"/> by mixed projections with experts laid
    /// out as their PEFT configs say (rank, scaling and which modules each adapts; a module an expert does
    /// not target contributes nothing). Expert weights start at zero (set them with
    /// <see cref="MixerLinear.SetExpert"/> or <see cref="InitializeExperts"/>); routers start at zero (uniform routing).
    /// </summary>
    /// <param name="model">The base model; its target projections are replaced.</param>
    /// <param name="config">Mixer settings and expert names.</param>
    /// <param name="expertConfigs">Each expert's PEFT config.</param>
    /// <param name="expertLayouts">
    /// Optional per expert: (rank, scaling) for a module name or null where the expert has no weights (for
    /// loaded adapters, what the file holds); by default derived from <paramref name="expertConfigs"/>.
    /// </param>
    /// <param name="dropout">LoRA dropout of the experts during training.</param>
    public static LoraMixerModel Attach(ICausalLM model, MixerConfig config, IReadOnlyList<LoraConfig> expertConfigs,
        IReadOnlyList<Func<string, (int Rank, double Scaling)?>>? expertLayouts = null, double dropout = 0.0)
    {
        if (expertConfigs.Count != config.Experts.Count)
            throw new ArgumentException($"{config.Experts.Count} experts in the config, {expertConfigs.Count} expert configs given");
        expertLayouts ??= expertConfigs
            .Select(c => (Func<string, (int Rank, double Scaling)?>)(m => c.IsTarget(m) ? (c.RankFor(m), c.ScalingFor(m)) : null))
            .ToArray();
        var targetable = TargetLinears.Targetable(model);
        var unknown = config.Targets.Except(targetable).ToArray();
        if (unknown.Length > 0)
            throw new ArgumentException($"unknown target module(s) {string.Join(", ", unknown)}; a block of this model has {string.Join(", ", targetable)}");
        var targets = TargetLinears.Find(model, name => config.Targets.Contains(name[(name.LastIndexOf('.') + 1)..]));
        if (targets.Count == 0) throw new ArgumentException("no target projection found (were they already adapted?)");
        int experts = config.Experts.Count;
        var routing = config.InferenceRouting;
        var device = model.Device;
        var (_, hidden, layers) = ModelStructure.Describe(model);
        var slots = new List<RoutingSlot>();
        var blockSlots = new Dictionary<int, RoutingSlot>();
        if (config.RouterInput == RouterInput.CausalMean && config.RouterScope != RouterScope.Block)
            throw new ArgumentException("router_input causal_mean needs router_scope block; with --router-scope projection add --router-input token");
        if (config.RoutingGranularity == RoutingGranularity.Sequence && config.RouterScope != RouterScope.Block)
            throw new ArgumentException("routing_granularity sequence needs router_scope block; with --router-scope projection add --routing-granularity token");
        if (config.RouterScope == RouterScope.Block)
        {
            long features = config.RouterInput == RouterInput.CausalMean ? 2L * hidden : hidden;
            for (int i = 0; i < layers; i++)
            {
                var router = new Router(experts, features, device);
                RoutingSlot? slot = null;
                // The router reads the normalised hidden state entering the block's attention (Mamba: its mixer):
                // serial attention routing, one decision for the input and output projections.
                string name = ModelStructure.AttachBlockRouter(model, i, router, input => slot!.Route(input));
                slot = new RoutingSlot(name, i, router, routing, config.RouterInput, config.RoutingGranularity);
                slots.Add(slot);
                blockSlots[i] = slot;
            }
        }
        var projections = new List<MixerLinear>();
        foreach (var target in targets)
        {
            var layout = expertLayouts.Select(f => f(target.ModuleName)).ToArray();
            RoutingSlot slot;
            bool owns = config.RouterScope == RouterScope.Projection;
            if (owns)
            {
                var router = new Router(experts, target.Linear.weight!.shape[1], device);
                slot = new RoutingSlot(target.ModuleName + ".router", target.LayerIndex, router, routing);
                slots.Add(slot);
            }
            else
            {
                slot = blockSlots[target.LayerIndex];
            }
            var mixed = new MixerLinear(target.ModuleName, target.Linear, layout, slot, owns, dropout);
            target.Replace(mixed);
            projections.Add(mixed);
        }
        return new LoraMixerModel(model, config, expertConfigs, projections, slots);
    }

    /// <summary>PEFT-style fresh experts: A Kaiming-uniform, B zero (stage 1 of the joint paradigm).</summary>
    public void InitializeExperts()
    {
        foreach (var p in _projections) p.InitializeExperts();
    }

    /// <summary>Sets the routing of every router (the mode of the current phase).</summary>
    public void SetRouting(RoutingSettings settings)
    {
        settings.Validate(Experts);
        foreach (var s in _slots) s.Settings = settings;
    }

    /// <summary>The expert of every sample [B] for hard routing (null to clear).</summary>
    public void SetHardExperts(Tensor? expertPerSample)
    {
        foreach (var s in _slots) s.HardExperts = expertPerSample;
    }

    /// <summary>
    /// Sequence routing: the position [B] of each row whose decision the whole row uses (the last prompt
    /// token), for forward passes over whole sequences; null = the last position of a prefill.
    /// </summary>
    public void SetDecisionPositions(Tensor? positions)
    {
        foreach (var s in _slots) s.DecisionPositions = positions;
    }

    /// <summary>Turns recording of routing probabilities (for the RSL and statistics) on or off.</summary>
    public void SetRecording(bool record)
    {
        foreach (var s in _slots)
        {
            s.Record = record;
            if (!record) s.TakeRecorded().ToList().ForEach(t => t.Dispose());
        }
    }

    /// <summary>
    /// The probabilities recorded since the last call, one [B, T, E] tensor per router and forward pass
    /// (with gradient); the caller disposes them.
    /// </summary>
    public IReadOnlyList<Tensor> TakeRecordedProbabilities() => _slots.SelectMany(s => s.TakeRecorded()).ToArray();

    /// <summary>Router weights by safetensors key.</summary>
    public IReadOnlyList<KeyValuePair<string, Parameter>> RouterParameters() =>
        _slots.Select(s => new KeyValuePair<string, Parameter>(s.Name + ".weight", s.Router.weight)).ToArray();

    /// <summary>
    /// Router input standardisation by safetensors key (<c>...router.input_mean</c>, <c>...router.input_std</c>);
    /// empty unless <see cref="MixerConfig.RouterInputNorm"/> is standardize and the statistics were measured.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> RouterBuffers() =>
        _slots.Where(s => s.Router.InputMean is not null).SelectMany(s => new[]
        {
            new KeyValuePair<string, Tensor>(s.Name + ".input_mean", s.Router.InputMean!),
            new KeyValuePair<string, Tensor>(s.Name + ".input_std", s.Router.InputStd!),
        }).ToArray();

    /// <summary>Turns recording of the routers' input features on or off (probes, standardisation).</summary>
    public void SetFeatureRecording(bool record)
    {
        foreach (var s in _slots)
        {
            s.RecordFeatures = record;
            if (!record) s.TakeRecordedFeatures().ToList().ForEach(t => t.Dispose());
        }
    }

    /// <summary>Stacked expert weights by module name.</summary>
    public IReadOnlyList<KeyValuePair<string, Parameter>> ExpertParameters() =>
        _projections.SelectMany(p => new[]
        {
            new KeyValuePair<string, Parameter>(p.ModuleName + ".lora_A", p.lora_A),
            new KeyValuePair<string, Parameter>(p.ModuleName + ".lora_B", p.lora_B),
        }).ToArray();

    /// <summary>Values of all experts (each counted at its own rank, without the padding of the stacked tensors).</summary>
    public long ExpertParameterCount() =>
        _projections.Sum(p => Enumerable.Range(0, p.Experts).Sum(e => (long)p.Ranks[e] * (p.lora_A.shape[2] + p.lora_B.shape[1])));

    /// <summary>Chooses what trains: routers, experts, both or neither.</summary>
    public void SetTrainable(bool routers, bool experts)
    {
        foreach (var (_, p) in RouterParameters()) p.requires_grad = routers;
        foreach (var (_, p) in ExpertParameters()) p.requires_grad = experts;
    }

    /// <summary>Replaces the recorded training settings.</summary>
    public void SetTrainingRecord(System.Text.Json.Nodes.JsonObject training) => Config = Config with { Training = training };

    /// <summary>Puts dropout of the mixed projections into training or evaluation behaviour.</summary>
    public void Train(bool on)
    {
        foreach (var p in _projections) p.train(on);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var s in _slots) s.Dispose();
    }
}
