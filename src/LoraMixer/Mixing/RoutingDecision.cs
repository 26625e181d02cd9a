using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// The expert weights a router chose for a batch of tokens: dense gates [..., E] (hard, soft,
/// straight-through) or the sparse top-k indices and weights [N, k] (inference).
/// </summary>
public sealed class RoutingDecision : IDisposable
{
    private Tensor? _scattered;

    private RoutingDecision(Tensor? gates, Tensor? topIndices, Tensor? topWeights)
    {
        Gates = gates;
        TopIndices = topIndices;
        TopWeights = topWeights;
    }

    /// <summary>Dense weights per token and expert, or null for sparse routing.</summary>
    public Tensor? Gates { get; }

    /// <summary>Chosen experts [N, k] per flattened token (sparse routing).</summary>
    public Tensor? TopIndices { get; }

    /// <summary>Their weights [N, k] (sparse routing).</summary>
    public Tensor? TopWeights { get; }

    /// <summary>Dense routing; takes ownership of <paramref name="gates"/>.</summary>
    public static RoutingDecision Dense(Tensor gates) => new(gates.DetachFromDisposeScope(), null, null);

    /// <summary>Sparse routing; takes ownership of both tensors.</summary>
    public static RoutingDecision Sparse(Tensor indices, Tensor weights) =>
        new(null, indices.DetachFromDisposeScope(), weights.DetachFromDisposeScope());

    /// <summary>
    /// Sparse routing as dense gates [N, <paramref name="experts"/>]: the top-k weights scattered into zeros. Made once
    /// per decision and shared by every projection the decision routes (owned by the decision).
    /// </summary>
    public Tensor ScatteredGates(long experts)
    {
        if (_scattered is { } made && made.shape[1] == experts) return made;
        if (TopIndices is null || TopWeights is null) throw new InvalidOperationException("dense routing has no top-k weights to scatter");
        _scattered?.Dispose();
        var gates = zeros(TopIndices.shape[0], experts, dtype: TopWeights.dtype, device: TopWeights.device).scatter_(1, TopIndices, TopWeights);
        _scattered = gates.DetachFromDisposeScope();
        return _scattered;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _scattered?.Dispose();
        Gates?.Dispose();
        TopIndices?.Dispose();
        TopWeights?.Dispose();
    }
}
