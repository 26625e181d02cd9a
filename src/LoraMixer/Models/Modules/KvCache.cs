using static TorchSharp.torch;

namespace LoraMixer.Models.Modules;

/// <summary>
/// Keys and values of every layer for a batch of sequences, preallocated to a fixed capacity so that
/// a decode step writes one position instead of concatenating the whole history.
/// </summary>
public sealed class KvCache : IInferenceCache
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;

    /// <summary>Allocates [batch, kvHeads, capacity, headDim] per layer for keys and for values.</summary>
    public KvCache(int layers, long batch, int kvHeads, int headDim, int capacity, Device device)
    {
        Capacity = capacity;
        _keys = new Tensor[layers];
        _values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            _keys[i] = zeros(new long[] { batch, kvHeads, capacity, headDim }, device: device).DetachFromDisposeScope();
            _values[i] = zeros(new long[] { batch, kvHeads, capacity, headDim }, device: device).DetachFromDisposeScope();
        }
    }

    private KvCache(Tensor[] keys, Tensor[] values, int capacity, int length, ObserverState observerState)
    {
        (_keys, _values, Capacity, Length, ObserverState) = (keys, values, capacity, length, observerState);
    }

    /// <summary>
    /// A new cache whose row i is a copy of row <paramref name="rows"/>[i] of this one (stored positions and
    /// capacity kept): one computed prompt continued by several sequences.
    /// </summary>
    public KvCache SelectRows(Tensor rows)
    {
        var keys = _keys.Select(k => k.index_select(0, rows).DetachFromDisposeScope()).ToArray();
        var values = _values.Select(v => v.index_select(0, rows).DetachFromDisposeScope()).ToArray();
        return new KvCache(keys, values, Capacity, Length, ObserverState.SelectRows(rows));
    }

    /// <inheritdoc />
    public ObserverState ObserverState { get; } = new();

    /// <summary>Sequences in the batch.</summary>
    public long Batch => _keys.Length == 0 ? 0 : _keys[0].shape[0];

    /// <summary>Keys of <paramref name="layer"/>, [batch, kvHeads, capacity, headDim] (all positions, stored or not).</summary>
    internal Tensor Keys(int layer) => _keys[layer];

    /// <summary>Values of <paramref name="layer"/>, [batch, kvHeads, capacity, headDim].</summary>
    internal Tensor Values(int layer) => _values[layer];

    /// <summary>Positions that can be stored.</summary>
    public int Capacity { get; }

    /// <summary>Positions stored so far (the same for every layer between forward passes).</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Writes k/v [B, kvHeads, T, D] of <paramref name="layer"/> after the stored positions and returns
    /// views of all positions including the new ones.
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        long t = k.shape[2];
        if (Length + t > Capacity)
            throw new InvalidOperationException($"KV cache full: {Length} + {t} positions exceed its capacity {Capacity}");
        _keys[layer].narrow(2, Length, t).copy_(k);
        _values[layer].narrow(2, Length, t).copy_(v);
        return (_keys[layer].narrow(2, 0, Length + t), _values[layer].narrow(2, 0, Length + t));
    }

    /// <summary>Marks <paramref name="positions"/> new positions as stored (called once per forward pass).</summary>
    public void Advance(int positions) => Length += positions;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
        ObserverState.Dispose();
    }

    /// <summary>
    /// Copies <paramref name="count"/> positions of row <paramref name="sourceRow"/> of <paramref name="source"/>, from
    /// <paramref name="sourceStart"/>, into row <paramref name="targetRow"/> of this cache at <paramref name="targetStart"/>,
    /// in every layer (serving: prompts computed one by one gathered into one batch).
    /// </summary>
    public void CopyPositions(KvCache source, long sourceRow, int sourceStart, long targetRow, int targetStart, int count)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source._keys.Length != _keys.Length) throw new ArgumentException($"caches of {source._keys.Length} and {_keys.Length} layers");
        if (count == 0) return;
        if (sourceStart < 0 || sourceStart + count > source.Capacity || targetStart < 0 || targetStart + count > Capacity)
            throw new ArgumentOutOfRangeException(nameof(count), $"positions {sourceStart}+{count} → {targetStart}+{count} outside capacities {source.Capacity} and {Capacity}");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        for (int layer = 0; layer < _keys.Length; layer++)
        {
            _keys[layer][targetRow].narrow(1, targetStart, count).copy_(source._keys[layer][sourceRow].narrow(1, sourceStart, count));
            _values[layer][targetRow].narrow(1, targetStart, count).copy_(source._values[layer][sourceRow].narrow(1, sourceStart, count));
        }
    }

    /// <summary>Sets how many positions are stored, after <see cref="CopyPositions"/> filled them.</summary>
    public void SetLength(int length)
    {
        if (length < 0 || length > Capacity) throw new ArgumentOutOfRangeException(nameof(length), $"length {length} outside 0..{Capacity}");
        Length = length;
    }
}
