using System.Runtime.CompilerServices;
using LoraMixer.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// One router and its latest decision. In block scope the decoder block routes once from its normalised
/// input and every mixed projection of the block reads the same decision (serial attention routing).
/// </summary>
public sealed class RoutingSlot : IDisposable
{
    private readonly List<Tensor> _recorded = new();
    private readonly List<Tensor> _recordedFeatures = new();
    private RoutingDecision? _current;
    private readonly int _experts;
    private readonly long _features;

    /// <summary>Creates the slot of <paramref name="router"/>, named like its safetensors key prefix.</summary>
    public RoutingSlot(string name, int layerIndex, Router router, RoutingSettings settings, RouterInput input = RouterInput.Token,
        RoutingGranularity granularity = RoutingGranularity.Token)
    {
        Name = name;
        LayerIndex = layerIndex;
        Router = router;
        Settings = settings;
        Input = input;
        Granularity = granularity;
        _experts = router.Experts;
        _features = router.InFeatures;
        long expected = input == RouterInput.CausalMean ? 2 : 1;
        if (router.InFeatures % expected != 0)
            throw new ArgumentException($"{name}: a {input} router needs an even feature count, got {router.InFeatures}");
    }

    /// <summary>What the router reads: the token alone or the token and the causal mean of its sequence.</summary>
    public RouterInput Input { get; }

    /// <summary>Whether every token is routed on its own or each sequence once.</summary>
    public RoutingGranularity Granularity { get; }

    /// <summary>
    /// Sequence routing: the position [B] whose decision every token of row b uses (the last prompt token);
    /// null = each row's last real token of the first forward pass (a prefill), kept in the cache for later steps.
    /// </summary>
    public Tensor? DecisionPositions { get; set; }

    /// <summary>Module name of the router, e.g. <c>model.layers.0.router</c>.</summary>
    public string Name { get; }

    /// <summary>Block index.</summary>
    public int LayerIndex { get; }

    /// <summary>The router W_g.</summary>
    public Router Router { get; }

    /// <summary>Routing of the current phase.</summary>
    public RoutingSettings Settings { get; set; }

    /// <summary>Expert index per sample [B] for hard routing; a single index [1] applies to every sample.</summary>
    public Tensor? HardExperts { get; set; }

    /// <summary>When true, each routing keeps its dense probabilities (with gradient) for the RSL and statistics.</summary>
    public bool Record { get; set; }

    /// <summary>When true, each routing also keeps the router's input features (detached) for probes and standardisation.</summary>
    public bool RecordFeatures { get; set; }

    /// <summary>The decision of the latest <see cref="Route(BlockInput)"/>.</summary>
    public RoutingDecision Current =>
        _current ?? throw new InvalidOperationException($"{Name}: a mixed projection ran before its router (call Route first)");

    /// <summary>Routes tokens h [..., in] that carry no padding or cache (projection scope, tests).</summary>
    public void Route(Tensor h) => Route(new BlockInput(h, null, null));

    /// <summary>Routes a block's input and keeps the decision for the block's projections.</summary>
    public void Route(BlockInput input)
    {
        using var scope = NewDisposeScope();
        _current?.Dispose();
        _current = null;
        DecodedTopK = 0;
        var h = input.Hidden;
        int experts = Router.Experts;
        var s = Settings;
        Tensor? p = null;
        if (s.Mode != RoutingMode.Hard || Record || RecordFeatures)
        {
            // Sequence routing after its prefill: the decision is in the cache, so decoding steps skip the router.
            var stored = Granularity == RoutingGranularity.Sequence ? input.Cache?.ObserverState.Get(Name + ".decision") : null;
            if (stored is not null && !RecordFeatures)
            {
                p = stored.unsqueeze(1).expand(h.shape[0], h.shape[1], stored.shape[1]);
            }
            else
            {
                var features = Features(input);
                if (RecordFeatures) _recordedFeatures.Add(features.detach().alias().DetachFromDisposeScope());
                var logits = Router.forward(features);
                if (AllowedExperts is { } allowed) logits = logits.masked_fill(allowed.logical_not().to(logits.device), float.NegativeInfinity);
                if (s.Temperature != 1.0) logits = logits / s.Temperature;
                p = logits.softmax(-1);
                if (Granularity == RoutingGranularity.Sequence) p = SequenceDecision(p, input);
            }
            if (Record) _recorded.Add(p.alias().DetachFromDisposeScope());
        }
        switch (s.Mode)
        {
            case RoutingMode.Hard:
            {
                var ids = HardExperts ?? throw new InvalidOperationException("hard routing needs the expert (task) of every sample");
                if (ids.shape[0] != h.shape[0] && ids.shape[0] != 1)
                    throw new ArgumentException($"hard routing got {ids.shape[0]} expert ids for a batch of {h.shape[0]}");
                if (ids.shape[0] != h.shape[0]) ids = ids.expand(h.shape[0]);
                var oneHot = nn.functional.one_hot(ids.to(h.device), experts).to(h.dtype);
                var shape = h.shape.ToArray();
                shape[^1] = experts;
                var view = new long[shape.Length];
                Array.Fill(view, 1L);
                view[0] = shape[0];
                view[^1] = experts;
                _current = RoutingDecision.Dense(oneHot.view(view).expand(shape).contiguous());
                break;
            }
            case RoutingMode.Soft:
                _current = RoutingDecision.Dense(p!.alias());
                break;
            case RoutingMode.TopK:
            {
                var (values, indices) = p!.topk(s.TopK, dim: -1);
                if (s.Renormalize) values = values / values.sum(-1, keepdim: true);
                _current = RoutingDecision.Sparse(indices.reshape(-1, s.TopK), values.reshape(-1, s.TopK));
                break;
            }
            case RoutingMode.StraightThrough:
            {
                var (values, indices) = p!.topk(s.TopK, dim: -1);
                if (s.Renormalize) values = values / values.sum(-1, keepdim: true);
                var sparse = zeros_like(p).scatter(-1, indices, values).detach();
                _current = RoutingDecision.Dense(sparse + p - p.detach());
                break;
            }
        }
    }

    /// <summary>
    /// Whether the decode kernel can route one new token per row as <see cref="Route(BlockInput)"/> would, with the
    /// routing state of <paramref name="cache"/> (<paramref name="sequences"/> sequences): top-k inference routing
    /// (restricted to <see cref="AllowedExperts"/> when set) or hard routing to <see cref="HardExperts"/>, nothing
    /// recorded, and the state the decision needs present in the cache (the stored decision of sequence routing, the
    /// running sum and count of a causal-mean router). <paramref name="rows"/>: rows of the step.
    /// </summary>
    internal bool CanDecode(IInferenceCache cache, int sequences, int rows)
    {
        if (Record || RecordFeatures) return false;
        if (Settings.Mode == RoutingMode.Hard)
        {
            // One expert per row of the step (or one for all), read at each step: serving sets new ids every step.
            var ids = HardExperts;
            if (ids is null || ids.device_type != DeviceType.CPU || ids.dtype != ScalarType.Int64 || ids.ndim != 1 || (ids.shape[0] != rows && ids.shape[0] != 1))
                return false;
            var hard = _decodeHard.Length == rows ? _decodeHard : _decodeHard = new int[rows];
            var span = ids.data<long>();
            for (int b = 0; b < rows; b++)
            {
                long id = span[span.Count == 1 ? 0 : b];
                if (id < 0 || id >= _experts) return false;
                hard[b] = (int)id;
            }
            return true;
        }
        if (Settings.Mode != RoutingMode.TopK || Settings.TopK > MaxDecodeTopK || !DecodeAllowed()) return false;
        var state = cache.ObserverState;
        // The addresses checked at the last step hold while the cache's state and the standardisation are the same objects.
        if (ReferenceEquals(_decodeState, state) && _decodeVersion == state.Version && _decodeBatch == sequences
            && ReferenceEquals(_decodeMean, Router.InputMean)) return true;
        _decodeState = null;
        int experts = _experts;
        long hidden = Input == RouterInput.CausalMean ? _features / 2 : _features;
        nint first = 0, second = 0, weight = 0, mean = 0, std = 0;
        if (Granularity == RoutingGranularity.Sequence)
        {
            if (state.Get(Name + ".decision") is not { } stored || !Shaped(stored, sequences, experts, out first)) return false;
        }
        else
        {
            if (!Models.Decoding.NativeData.TryFloat(Router.weight, out weight)) return false;
            if (Router.InputMean is { } m && (!Models.Decoding.NativeData.TryFloat(m, out mean) || !Models.Decoding.NativeData.TryFloat(Router.InputStd, out std)))
                return false;
            if (Input == RouterInput.CausalMean
                && (state.Get(Name + ".sum") is not { } sum || !Shaped(sum, sequences, hidden, out first)
                    || state.Get(Name + ".count") is not { } count || !Shaped(count, sequences, 1, out second)))
                return false;
        }
        (_decodeState, _decodeVersion, _decodeBatch, _decodeMean) = (state, state.Version, sequences, Router.InputMean);
        (_decodeFirst, _decodeSecond, _decodeWeight, _decodeMeanData, _decodeStdData) = (first, second, weight, mean, std);
        return true;

        static bool Shaped(Tensor t, long rows, long columns, out nint data)
        {
            data = 0;
            return t.ndim == 2 && t.shape[0] == rows && t.shape[1] == columns && Models.Decoding.NativeData.TryFloat(t, out data);
        }
    }

    // Reads AllowedExperts ([E] bool) into _decodeAllowed (null = every expert), once per mask object; false for a mask
    // the kernel does not read (another shape or device).
    private bool DecodeAllowed()
    {
        var allowed = AllowedExperts;
        if (allowed is null)
        {
            (_decodeAllowedOf, _decodeAllowed) = (null, null);
            return true;
        }
        if (ReferenceEquals(allowed, _decodeAllowedOf)) return true;
        if (allowed.device_type != DeviceType.CPU || allowed.dtype != ScalarType.Bool || allowed.ndim != 1 || allowed.shape[0] != _experts) return false;
        _decodeAllowed = allowed.data<bool>().ToArray();
        _decodeAllowedOf = allowed;
        return true;
    }

    // What CanDecode checked, for DecodeRoute: the state it read and the addresses it found.
    private ObserverState? _decodeState;
    private int _decodeVersion, _decodeBatch;
    private Tensor? _decodeMean, _decodeAllowedOf;
    private bool[]? _decodeAllowed;
    private int[] _decodeHard = [];
    private nint _decodeFirst, _decodeSecond, _decodeWeight, _decodeMeanData, _decodeStdData;

    /// <summary>Largest top-k the decode kernel handles.</summary>
    internal const int MaxDecodeTopK = 16;

    /// <summary>
    /// The decode kernel's routing (after <see cref="CanDecode"/>): for hidden [batch, hiddenSize] of one new token per
    /// row, writes each row's k experts and weights to <paramref name="experts"/> / <paramref name="gates"/> [batch, k]
    /// and returns k. Row b's routing state is sequence <paramref name="slots"/>[b] of the cache; a causal-mean router's
    /// running sum and count there advance in place. Hard routing: each row's expert with weight 1 (k = 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal unsafe int DecodeRoute(float* hidden, int batch, int hiddenSize, int[] slots, int[] experts, float[] gates)
    {
        int chosenK = Settings.Mode == RoutingMode.Hard ? 1 : Settings.TopK;
        if (Settings.Mode == RoutingMode.Hard)
        {
            for (int b = 0; b < batch; b++)
            {
                experts[b] = _decodeHard[b];
                gates[b] = 1f;
            }
        }
        else
        {
            DecodeTopK(hidden, batch, hiddenSize, slots, experts, gates);
        }
        // Kept for serving's per-expert counts (Current is not updated by the kernel).
        if (DecodedExperts.Length < batch * chosenK) DecodedExperts = new int[batch * chosenK];
        Array.Copy(experts, DecodedExperts, batch * chosenK);
        DecodedTopK = chosenK;
        DecodedRows = batch;
        return chosenK;
    }

    /// <summary>
    /// The experts the decode kernel chose at its latest step, [<see cref="DecodedRows"/>, <see cref="DecodedTopK"/>];
    /// <see cref="DecodedTopK"/> is 0 when the latest routing was <see cref="Route(BlockInput)"/> (then read <see cref="Current"/>).
    /// </summary>
    internal int[] DecodedExperts { get; private set; } = [];

    internal int DecodedTopK { get; private set; }

    internal int DecodedRows { get; private set; }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private unsafe void DecodeTopK(float* hidden, int batch, int hiddenSize, int[] slots, int[] experts, float[] gates)
    {
        int e = _experts, k = Settings.TopK;
        long features = _features;
        bool[]? allowed = _decodeAllowed;
        Span<float> p = stackalloc float[e];
        var f = features <= 4096 ? stackalloc float[(int)features] : new float[features];
        for (int b = 0; b < batch; b++)
        {
            float* h = hidden + (long)b * hiddenSize;
            long slot = slots[b];
            if (Granularity == RoutingGranularity.Sequence)
            {
                float* stored = (float*)_decodeFirst + slot * e;
                for (int i = 0; i < e; i++) p[i] = stored[i];
            }
            else
            {
                new ReadOnlySpan<float>(h, hiddenSize).CopyTo(f);
                if (Input == RouterInput.CausalMean)
                {
                    float* sum = (float*)_decodeFirst + slot * hiddenSize;
                    float* count = (float*)_decodeSecond + slot;
                    *count += 1f;
                    float n = Math.Max(*count, 1f);
                    for (int i = 0; i < hiddenSize; i++)
                    {
                        sum[i] += h[i];
                        f[hiddenSize + i] = sum[i] / n;
                    }
                }
                if (_decodeMeanData != 0)
                {
                    float* mean = (float*)_decodeMeanData, std = (float*)_decodeStdData;
                    for (int i = 0; i < features; i++) f[i] = (f[i] - mean[i]) / std[i];
                }
                float* w = (float*)_decodeWeight;
                float max = float.NegativeInfinity;
                fixed (float* fp = f)
                    for (int i = 0; i < e; i++)
                    {
                        // A restricted expert's logit is -inf (probability 0), as Route's masked_fill makes it.
                        if (allowed is not null && !allowed[i])
                        {
                            p[i] = float.NegativeInfinity;
                            continue;
                        }
                        float logit = Models.Decoding.DecodeMath.Dot(w + i * features, fp, (int)features);
                        if (Settings.Temperature != 1.0) logit = (float)(logit / Settings.Temperature);
                        p[i] = logit;
                        max = Math.Max(max, logit);
                    }
                float total = 0;
                for (int i = 0; i < e; i++) total += p[i] = MathF.Exp(p[i] - max);
                for (int i = 0; i < e; i++) p[i] /= total;
            }
            // top-k (largest first; ties to the lower index), then renormalised over the chosen experts.
            float chosen = 0;
            for (int j = 0; j < k; j++)
            {
                int best = -1;
                for (int i = 0; i < e; i++)
                {
                    if (p[i] < 0) continue;
                    if (best < 0 || p[i] > p[best]) best = i;
                }
                experts[b * k + j] = best;
                gates[b * k + j] = p[best];
                chosen += p[best];
                p[best] = -1f;
            }
            if (Settings.Renormalize)
                for (int j = 0; j < k; j++) gates[b * k + j] /= chosen;
        }
    }

    // p [B, T, E] → the decision of each row's decision position, repeated over T. With a cache, the first
    // pass (the prefill) stores its decision and every later step reuses it.
    private Tensor SequenceDecision(Tensor p, BlockInput input)
    {
        var cache = input.Cache;
        if (p.dim() != 3) throw new ArgumentException($"{Name}: sequence routing needs [batch, time, ...] input");
        long batch = p.shape[0], time = p.shape[1], experts = p.shape[2];
        var stored = cache?.ObserverState.Get(Name + ".decision");
        Tensor decision;
        if (stored is not null)
        {
            decision = stored;
        }
        else
        {
            // Without given positions: each row's last real token (the end of a prefill, left- or right-padded).
            var positions = DecisionPositions ?? (input.TokenMask is { } mask
                ? (mask.to(ScalarType.Int64).to(p.device) * arange(time, dtype: ScalarType.Int64, device: p.device)).argmax(1)
                : full(new[] { batch }, time - 1, ScalarType.Int64, device: p.device));
            if (positions.numel() != batch) throw new ArgumentException($"{Name}: {positions.numel()} decision positions for a batch of {batch}");
            var index = positions.to(ScalarType.Int64).to(p.device).clamp(0, time - 1).view(batch, 1, 1).expand(batch, 1, experts);
            decision = p.gather(1, index).squeeze(1);
            cache?.ObserverState.Set(Name + ".decision", decision);
        }
        return decision.unsqueeze(1).expand(batch, time, experts);
    }

    /// <summary>
    /// The router's input features for <paramref name="input"/>: h [B, T, H], or [h ; m] [B, T, 2H] where m_t is
    /// the mean of the real tokens' h up to t, continued from the running sum the cache holds for this router.
    /// </summary>
    public Tensor Features(BlockInput input)
    {
        var h = input.Hidden;
        if (Input == RouterInput.Token) return h.alias();
        if (h.dim() != 3) throw new ArgumentException($"{Name}: a causal-mean router reads [batch, time, hidden], got [{string.Join(", ", h.shape)}]");
        using var scope = NewDisposeScope();
        var mask = input.TokenMask is { } m ? m.to(h.dtype).to(h.device).unsqueeze(-1) : ones(h.shape[0], h.shape[1], 1, dtype: h.dtype, device: h.device);
        var sum = (h * mask).cumsum(1);
        var count = mask.cumsum(1);
        var state = input.Cache?.ObserverState;
        if (state?.Get(Name + ".sum") is { } pastSum && state.Get(Name + ".count") is { } pastCount)
        {
            sum = sum + pastSum.unsqueeze(1);
            count = count + pastCount.unsqueeze(1);
        }
        if (state is not null)
        {
            long last = h.shape[1] - 1;
            state.Set(Name + ".sum", sum.select(1, last));
            state.Set(Name + ".count", count.select(1, last));
        }
        var mean = sum / count.clamp_min(1);
        return cat(new[] { h, mean }, -1).MoveToOuterDisposeScope();
    }

    /// <summary>Hands over the recorded router inputs (one [..., features] tensor per routing) and forgets them.</summary>
    public IReadOnlyList<Tensor> TakeRecordedFeatures()
    {
        var taken = _recordedFeatures.ToArray();
        _recordedFeatures.Clear();
        return taken;
    }

    /// <summary>Hands over the recorded probabilities (one [..., E] tensor per routing) and forgets them.</summary>
    public IReadOnlyList<Tensor> TakeRecorded()
    {
        var taken = _recorded.ToArray();
        _recorded.Clear();
        return taken;
    }

    /// <summary>Drops the current decision and recordings.</summary>
    public void Clear()
    {
        _current?.Dispose();
        _current = null;
        foreach (var t in _recorded) t.Dispose();
        _recorded.Clear();
        foreach (var t in _recordedFeatures) t.Dispose();
        _recordedFeatures.Clear();
    }

    /// <inheritdoc />
    public void Dispose() => Clear();

    /// <summary>
    /// Serving: a [E] bool mask of the experts the router may choose (the others get probability 0 before top-k);
    /// null = all experts.
    /// </summary>
    public Tensor? AllowedExperts { get; set; }
}
