using LoraMixer.Models.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Serving;

/// <summary>
/// The running requests of one model and routing, decoded together: one forward pass per step feeds every row its
/// next token. A new request is prefilled alone (as <c>generate</c> does for one prompt) and joins at the next step:
/// its keys and values are copied into a free row of a new batch cache, right-aligned to the batch's length with the
/// positions before it masked (left padding; positions come from the mask), so rows of different lengths share
/// one pass. A finished or cancelled row leaves at the next step, and the cache is rebuilt without it, as short as
/// the longest remaining row (compaction). Models without a key/value cache (Mamba) run each row alone.
/// </summary>
internal sealed class DecodeLane : IDisposable
{
    // Positions a batch cache grows by at a time (rebuilt, and compacted, when full).
    private const int GrowthChunk = 256;

    private readonly ServingMetrics _metrics;
    private KvCache? _cache;
    private Tensor? _mask;
    private bool _padded, _dirty;

    public DecodeLane(ModelRunner runner, LaneRouting routing, ServingMetrics metrics)
    {
        Runner = runner;
        Routing = routing;
        _metrics = metrics;
    }

    public ModelRunner Runner { get; }

    public LaneRouting Routing { get; }

    /// <summary>Rows in the batch (in cache order).</summary>
    public List<ServingRow> Rows { get; } = [];

    /// <summary>Prefilled rows waiting to join at the next step.</summary>
    public List<ServingRow> Joining { get; } = [];

    public int Count => Rows.Count + Joining.Count;

    /// <summary>Runs the prompt of <paramref name="row"/> alone and samples its first token; true when that already ends it.</summary>
    public bool Prefill(ServingRow row)
    {
        using var scope = NewDisposeScope();
        var model = Runner.Model;
        int p = row.PromptIds.Count;
        Runner.Apply(Routing, row.HardExpert is int e ? [e] : null);
        // The capacity generate gives a single prompt, so that this pass is the very same computation.
        row.OwnCache = model.CreateCache(1, p + Math.Max(row.Request.MaxNewTokens, 1));
        var input = tensor(row.PromptIds.Select(x => (long)x).ToArray(), new long[] { 1, p }).to(model.Device);
        float[] logits = model.Forward(input, null, row.OwnCache, lastPositionOnly: true).to(CPU).reshape(-1).data<float>().ToArray();
        Runner.CollectRouting(Routing, [row], p, _metrics);
        row.CachedLength = p;
        bool done = row.Accept(logits, _metrics);
        _metrics.RecordStep(1, decodeStep: false);
        if (!done) Joining.Add(row);
        return done;
    }

    /// <summary>Takes <paramref name="row"/> out of the lane (finished or cancelled) and frees its own cache.</summary>
    public void Remove(ServingRow row)
    {
        if (Rows.Remove(row)) _dirty = true;
        else Joining.Remove(row);
        row.Dispose();
    }

    /// <summary>One decoding step of every row; returns the rows that finished.</summary>
    public IReadOnlyList<ServingRow> Step()
    {
        if (Count == 0)
        {
            ReleaseBatch();
            return [];
        }
        return Runner.Batched ? StepBatched() : StepAlone();
    }

    private List<ServingRow> StepAlone()
    {
        Rows.AddRange(Joining);
        Joining.Clear();
        var finished = new List<ServingRow>();
        var model = Runner.Model;
        foreach (var row in Rows)
        {
            using var scope = NewDisposeScope();
            Runner.Apply(Routing, row.HardExpert is int e ? [e] : null);
            var input = tensor(new long[] { row.NextToken }, new long[] { 1, 1 }).to(model.Device);
            float[] logits = model.Forward(input, null, row.OwnCache, lastPositionOnly: true).to(CPU).reshape(-1).data<float>().ToArray();
            Runner.CollectRouting(Routing, [row], 1, _metrics);
            row.CachedLength++;
            if (row.Accept(logits, _metrics)) finished.Add(row);
        }
        _metrics.RecordStep(Rows.Count);
        return finished;
    }

    private List<ServingRow> StepBatched()
    {
        if (Joining.Count > 0 || _dirty || _cache is null || _cache.Length >= _cache.Capacity) Rebuild();
        using var scope = NewDisposeScope();
        var cache = _cache!;
        var model = Runner.Model;
        int b = Rows.Count, past = cache.Length;
        var input = tensor(Rows.Select(r => (long)r.NextToken).ToArray(), new long[] { b, 1 }).to(model.Device);
        _mask!.narrow(1, past, 1).fill_(1);
        Runner.Apply(Routing, Routing.Mode == LaneRoutingMode.PerRowExpert ? Rows.Select(r => r.HardExpert!.Value).ToArray() : null);
        var mask = _padded ? _mask.narrow(1, 0, past + 1) : null;
        float[] logits = model.Forward(input, mask, cache, lastPositionOnly: true).to(CPU).reshape(-1).data<float>().ToArray();
        Runner.CollectRouting(Routing, Rows, 1, _metrics);
        int vocab = logits.Length / b;
        var finished = new List<ServingRow>();
        for (int i = 0; i < b; i++)
        {
            Rows[i].CachedLength++;
            if (Rows[i].Accept(logits.AsSpan(i * vocab, vocab), _metrics)) finished.Add(Rows[i]);
        }
        _metrics.RecordStep(b);
        return finished;
    }

    // Gathers the surviving rows and the joining ones into a new batch cache, right-aligned at the longest row.
    private void Rebuild()
    {
        var all = Rows.Concat(Joining).ToList();
        if (Rows.Count == 0 && Joining.Count == 1 && Joining[0].OwnCache is KvCache own && own.Length < own.Capacity)
        {
            // A lone request keeps the cache of its prefill: exactly what generate runs.
            ReleaseBatch();
            var row = Joining[0];
            row.OwnCache = null;
            _cache = own;
            SetMask(all, own.Length, own.Capacity);
            Finish(all);
            return;
        }
        int length = all.Max(r => r.CachedLength);
        int remaining = all.Max(r => r.Request.MaxNewTokens - r.Generated.Count);
        int capacity = length + Math.Clamp(remaining, 1, GrowthChunk);
        var cache = (KvCache)Runner.Model.CreateCache(all.Count, capacity);
        try
        {
            using var scope = NewDisposeScope();
            var sources = all.Select(r => r.OwnCache is KvCache c ? (Cache: c, Row: 0L) : (Cache: _cache!, Row: (long)r.BatchIndex)).ToArray();
            for (int i = 0; i < all.Count; i++)
            {
                var (source, sourceRow) = sources[i];
                int len = all[i].CachedLength;
                cache.CopyPositions(source, sourceRow, source.Length - len, i, length - len, len);
            }
            foreach (string key in sources.SelectMany(s => s.Cache.ObserverState.Keys).Distinct().ToArray())
            {
                var parts = sources.Select(s => s.Cache.ObserverState.Get(key)?.narrow(0, s.Row, 1)).ToArray();
                var like = parts.First(t => t is not null)!;
                cache.ObserverState.Set(key, cat(parts.Select(t => t ?? zeros_like(like)).ToArray(), 0));
            }
            cache.SetLength(length);
        }
        catch
        {
            cache.Dispose();
            throw;
        }
        ReleaseBatch();
        foreach (var row in Joining)
        {
            row.OwnCache?.Dispose();
            row.OwnCache = null;
        }
        _cache = cache;
        SetMask(all, length, capacity);
        Finish(all);
    }

    private void SetMask(List<ServingRow> rows, int length, int capacity)
    {
        var values = new long[rows.Count * capacity];
        for (int i = 0; i < rows.Count; i++)
            Array.Fill(values, 1L, i * capacity + length - rows[i].CachedLength, rows[i].CachedLength);
        _mask = tensor(values, new long[] { rows.Count, capacity }).to(Runner.Model.Device).DetachFromDisposeScope();
        _padded = rows.Any(r => r.CachedLength != length);
    }

    private void Finish(List<ServingRow> all)
    {
        Rows.Clear();
        Rows.AddRange(all);
        Joining.Clear();
        for (int i = 0; i < Rows.Count; i++) Rows[i].BatchIndex = i;
        _dirty = false;
    }

    private void ReleaseBatch()
    {
        _cache?.Dispose();
        _cache = null;
        _mask?.Dispose();
        _mask = null;
    }

    public void Dispose()
    {
        ReleaseBatch();
        foreach (var row in Rows.Concat(Joining)) row.Dispose();
    }
}
