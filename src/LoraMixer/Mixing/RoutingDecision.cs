using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// The expert weights a router chose for a batch of tokens: dense gates [..., E] (hard, soft,
/// straight-through) or the sparse top-k indices and weights [N, k] (inference).
/// </summary>
public sealed class RoutingDecision : IDisposable
{
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

    /// <inheritdoc />
    public void Dispose()
    {
        Gates?.Dispose();
        TopIndices?.Dispose();
        TopWeights?.Dispose();
    }
}
