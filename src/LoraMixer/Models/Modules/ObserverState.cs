using static TorchSharp.torch;

namespace LoraMixer.Models.Modules;

/// <summary>
/// Tensors that observers of a model (routers) keep per sequence between decoding steps, stored with the
/// inference cache so that they live, are copied and are freed with it. Every tensor's first dimension is
/// the batch.
/// </summary>
public sealed class ObserverState : IDisposable
{
    private readonly Dictionary<string, Tensor> _tensors = new(StringComparer.Ordinal);

    /// <summary>Counts <see cref="Set"/> calls: while it is unchanged, every stored tensor is the same tensor.</summary>
    internal int Version { get; private set; }

    /// <summary>The tensor stored under <paramref name="key"/>, or null.</summary>
    public Tensor? Get(string key) => _tensors.TryGetValue(key, out var t) ? t : null;

    /// <summary>Stores a copy of <paramref name="value"/> under <paramref name="key"/>, freeing the previous one.</summary>
    public void Set(string key, Tensor value)
    {
        var copy = value.detach().clone().DetachFromDisposeScope();
        if (_tensors.Remove(key, out var old)) old.Dispose();
        _tensors[key] = copy;
        Version++;
    }

    /// <summary>A new store whose row i is row <paramref name="rows"/>[i] of this one.</summary>
    public ObserverState SelectRows(Tensor rows)
    {
        var selected = new ObserverState();
        foreach (var (key, t) in _tensors)
            selected._tensors[key] = t.index_select(0, rows.to(t.device)).DetachFromDisposeScope();
        return selected;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _tensors.Values) t.Dispose();
        _tensors.Clear();
    }

    /// <summary>The keys stored so far.</summary>
    public IReadOnlyCollection<string> Keys => _tensors.Keys;
}
