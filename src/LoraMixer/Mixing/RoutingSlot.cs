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
    private RoutingDecision? _current;

    /// <summary>Creates the slot of <paramref name="router"/>, named like its safetensors key prefix.</summary>
    public RoutingSlot(string name, int layerIndex, Router router, RoutingSettings settings)
    {
        Name = name;
        LayerIndex = layerIndex;
        Router = router;
        Settings = settings;
    }

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

    /// <summary>The decision of the latest <see cref="Route"/>.</summary>
    public RoutingDecision Current =>
        _current ?? throw new InvalidOperationException($"{Name}: a mixed projection ran before its router (call Route first)");

    /// <summary>Routes tokens h [..., in] and keeps the decision for the block's projections.</summary>
    public void Route(Tensor h)
    {
        using var scope = NewDisposeScope();
        _current?.Dispose();
        _current = null;
        int experts = Router.Experts;
        var s = Settings;
        Tensor? p = null;
        if (s.Mode != RoutingMode.Hard || Record)
        {
            var logits = Router.forward(h);
            if (s.Temperature != 1.0) logits = logits / s.Temperature;
            p = logits.softmax(-1);
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
    }

    /// <inheritdoc />
    public void Dispose() => Clear();
}
