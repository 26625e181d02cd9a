using LoraMixer.Models.Decoding;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Serving;

/// <summary>
/// The running requests of one model and routing, decoded together: one forward pass per step feeds every row its
/// next token. On the C# decode kernel every row owns one sequence (slot) of a lane cache preallocated for several
/// rows and positions, and each row attends over its own positions, so no padding is computed. The short prompts of
/// the requests that arrive between two steps are prefilled together, in one kernel pass, straight into free slots
/// (<see cref="PrefillWaiting"/>); any other new request is prefilled alone (as <c>generate</c> does for one
/// prompt) and its keys and values are copied into a free slot when it joins at the next step. A leaving row frees
/// its slot, and the other rows are not touched. The cache grows geometrically (rows and positions) when full.
/// When the kernel does not cover a step (another model family, a router it does not read), the lane moves its rows into one batch cache, right-aligned
/// to the longest row with the positions before each shorter row masked (left padding), and runs the TorchSharp
/// path, rebuilding that cache as rows join and leave, until the lane empties. Models without a key/value cache
/// (Mamba) run each row alone.
/// </summary>
internal sealed class DecodeLane : IDisposable
{
    // Positions a padded batch cache grows by at a time (rebuilt, and compacted, when full).
    private const int GrowthChunk = 256;

    // Positions and rows a lane cache starts with (then doubled as needed).
    private const int FirstPositions = 64, FirstSlots = 4;

    private readonly ServingMetrics _metrics;
    private readonly LlamaForCausalLM? _kernelModel;

    // Kernel mode: the lane cache and which of its slots hold a row.
    private KvCache? _slots;
    private bool[] _used = [];
    private long[] _ids = [];
    private int[] _rowSlots = [], _lengths = [];
    private float[] _logits = [];

    // Padded mode (TorchSharp path): the batch cache, its mask, and whether rows left since it was built.
    private bool _paddedMode;
    private KvCache? _cache;
    private Tensor? _mask;
    private bool _padded, _dirty;

    public DecodeLane(ModelRunner runner, LaneRouting routing, ServingMetrics metrics)
    {
        Runner = runner;
        Routing = routing;
        _metrics = metrics;
        _kernelModel = runner.Model as LlamaForCausalLM;
        _paddedMode = _kernelModel is null;
    }

    public ModelRunner Runner { get; }

    public LaneRouting Routing { get; }

    /// <summary>Rows in the batch (each in its slot of the lane cache, or in batch-cache order in padded mode).</summary>
    public List<ServingRow> Rows { get; } = [];

    /// <summary>Prefilled rows waiting to join at the next step.</summary>
    public List<ServingRow> Joining { get; } = [];

    /// <summary>Admitted rows whose prompts <see cref="PrefillWaiting"/> will run together.</summary>
    public List<ServingRow> Waiting { get; } = [];

    public int Count => Rows.Count + Joining.Count + Waiting.Count;

    /// <summary>Every row of the lane: decoding, joining at the next step, or waiting for the shared prefill.</summary>
    public IEnumerable<ServingRow> AllRows => Rows.Concat(Joining).Concat(Waiting);

    /// <summary>
    /// Whether <paramref name="row"/>'s prompt can be prefilled with others in one kernel pass: the lane runs on the
    /// kernel, the prompt is short, and its routing needs no state from the prompt (the plain base, or adapters; a
    /// mixer's router reads the whole prompt, which its TorchSharp prefill computes).
    /// </summary>
    public bool CanPrefillTogether(ServingRow row) =>
        !_paddedMode && _kernelModel is { UseDecodeKernel: true } && Runner.Batched
        && row.PromptIds.Count is >= 1 and <= LlamaDecodeKernel.MaxPrefillTokens
        && (Runner.Mixer is null || Routing.Mode == LaneRoutingMode.PerRowExpert);

    /// <summary>
    /// Prefills every row of <see cref="Waiting"/> in one kernel pass, each straight into a free slot of the lane
    /// cache, and samples their first tokens; they are in <see cref="Rows"/> afterwards. Returns the rows that their
    /// first token already ends. Rows the kernel does not cover are prefilled one by one (<see cref="Prefill"/>).
    /// </summary>
    public IReadOnlyList<ServingRow> PrefillWaiting()
    {
        var rows = Waiting.ToList();
        if (rows.Count == 0) return [];
        var finished = new List<ServingRow>();
        if (!PrefillTogether(rows, finished))
            foreach (var row in rows)
            {
                Waiting.Remove(row);
                if (Prefill(row)) finished.Add(row);
            }
        return finished;
    }

    // The kernel pass of PrefillWaiting; false (nothing changed) when the kernel does not cover it.
    private bool PrefillTogether(List<ServingRow> rows, List<ServingRow> finished)
    {
        if (_paddedMode || _kernelModel is null) return false;
        int total = rows.Sum(r => r.PromptIds.Count), vocab = Runner.Model.VocabSize;
        int longest = Math.Max(rows.Max(r => r.PromptIds.Count), Rows.Count == 0 ? 0 : Rows.Max(r => r.CachedLength)) + 1;
        Reserve(Rows.Count + rows.Count, longest);
        var ids = new long[total];
        var slots = new int[total];
        var positions = new int[total];
        var last = new int[rows.Count];
        var experts = Routing.Mode == LaneRoutingMode.PerRowExpert ? new int[total] : null;
        var taken = new int[rows.Count];
        int at = 0;
        for (int j = 0; j < rows.Count; j++)
        {
            int slot = Array.IndexOf(_used, false);
            _used[slot] = true;
            taken[j] = slot;
            var prompt = rows[j].PromptIds;
            for (int t = 0; t < prompt.Count; t++, at++)
            {
                (ids[at], slots[at], positions[at]) = (prompt[t], slot, t);
                if (experts is not null) experts[at] = rows[j].HardExpert!.Value;
            }
            last[j] = at - 1;
        }
        var logits = new float[rows.Count * vocab];
        bool ran = false;
        try
        {
            using var scope = NewDisposeScope();
            Runner.Apply(Routing, experts);
            ran = _kernelModel.TryPrefillRows(ids, slots, positions, last, _slots!, logits);
        }
        finally
        {
            if (!ran) foreach (int slot in taken) _used[slot] = false;
        }
        if (!ran) return false;
        for (int j = 0; j < rows.Count; j++)
        {
            var row = rows[j];
            Waiting.Remove(row);
            row.BatchIndex = taken[j];
            row.CachedLength = row.PromptIds.Count;
            Rows.Add(row);
            Runner.CollectRouting(Routing, [row], row.CachedLength, _metrics);
            if (row.Accept(logits.AsSpan(j * vocab, vocab), _metrics)) finished.Add(row);
        }
        _metrics.RecordStep(rows.Count, decodeStep: false);
        return true;
    }

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
        if (Rows.Remove(row))
        {
            if (_paddedMode) _dirty = true;
            else _used[row.BatchIndex] = false;
        }
        else if (!Joining.Remove(row)) Waiting.Remove(row);
        row.Dispose();
    }

    /// <summary>One decoding step of every row; returns the rows that finished.</summary>
    public IReadOnlyList<ServingRow> Step()
    {
        if (Count == 0)
        {
            ReleaseBatch();
            ReleaseSlots();
            return [];
        }
        if (!Runner.Batched) return StepAlone();
        if (!_paddedMode)
        {
            if (StepSlots() is { } done) return done;
            // The kernel does not cover this step: from now on the rows share a padded batch cache.
            _paddedMode = true;
            Rebuild();
            ReleaseSlots();
        }
        return StepBatched();
    }

    // One kernel step of every row in its own slot; null (nothing decoded) when the kernel does not cover it.
    private List<ServingRow>? StepSlots()
    {
        foreach (var row in Joining) Place(row);
        Joining.Clear();
        int b = Rows.Count, vocab = Runner.Model.VocabSize;
        Reserve(b, Rows.Max(r => r.CachedLength) + 1);
        // The kernel's batch is the arrays' length (they change when rows join or leave).
        if (_ids.Length != b) (_ids, _rowSlots, _lengths) = (new long[b], new int[b], new int[b]);
        if (_logits.Length < b * vocab) _logits = new float[b * vocab];
        var (ids, slots, lengths) = (_ids, _rowSlots, _lengths);
        for (int i = 0; i < b; i++) (ids[i], slots[i], lengths[i]) = (Rows[i].NextToken, Rows[i].BatchIndex, Rows[i].CachedLength);
        using (var scope = NewDisposeScope())
        {
            Runner.Apply(Routing, Routing.Mode == LaneRoutingMode.PerRowExpert ? Rows.Select(r => r.HardExpert!.Value).ToArray() : null);
            if (!_kernelModel!.TryDecodeRows(ids, slots, lengths, _slots!, _logits)) return null;
            Runner.CollectRouting(Routing, Rows, 1, _metrics);
        }
        var finished = new List<ServingRow>();
        for (int i = 0; i < b; i++)
        {
            Rows[i].CachedLength++;
            if (Rows[i].Accept(_logits.AsSpan(i * vocab, vocab), _metrics)) finished.Add(Rows[i]);
        }
        _metrics.RecordStep(b);
        return finished;
    }

    // Copies a prefilled row's keys, values and routing state into a free slot of the lane cache and frees its own cache.
    private void Place(ServingRow row)
    {
        var own = (KvCache)row.OwnCache!;
        int len = row.CachedLength;
        Reserve(Rows.Count + 1, len + 1);
        var cache = _slots!;
        int slot = Array.IndexOf(_used, false);
        using (var scope = NewDisposeScope())
        {
            cache.CopyPositions(own, 0, own.Length - len, slot, 0, len);
            var state = cache.ObserverState;
            foreach (string key in own.ObserverState.Keys.Union(state.Keys).ToArray())
            {
                var source = own.ObserverState.Get(key);
                var target = state.Get(key);
                if (target is null)
                {
                    state.Set(key, zeros(new[] { cache.Batch }.Concat(source!.shape.Skip(1)).ToArray(), source.dtype, source.device));
                    target = state.Get(key)!;
                }
                if (source is null) target[slot].zero_();
                else target[slot].copy_(source[0]);
            }
        }
        own.Dispose();
        row.OwnCache = null;
        row.BatchIndex = slot;
        _used[slot] = true;
        Rows.Add(row);
    }

    // Makes the lane cache hold at least `rows` rows and `positions` positions per row, doubling what it lacks
    // (positions up to the model's limit) and copying the rows it holds.
    private void Reserve(int rows, int positions)
    {
        var old = _slots;
        if (old is not null && old.Batch >= rows && old.Capacity >= positions) return;
        int slotCount = (int)(old?.Batch ?? 0), capacity = old?.Capacity ?? 0;
        if (slotCount < rows) slotCount = Math.Max(FirstSlots, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)rows));
        if (capacity < positions)
        {
            capacity = Math.Max(FirstPositions, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)positions));
            capacity = Math.Max(positions, Math.Min(capacity, Runner.Model.MaxPositionEmbeddings));
        }
        var cache = (KvCache)Runner.Model.CreateCache(slotCount, capacity);
        try
        {
            using var scope = NewDisposeScope();
            if (old is not null)
            {
                foreach (var row in Rows) cache.CopyPositions(old, row.BatchIndex, 0, row.BatchIndex, 0, row.CachedLength);
                foreach (string key in old.ObserverState.Keys)
                {
                    var source = old.ObserverState.Get(key)!;
                    var grown = zeros(new[] { (long)slotCount }.Concat(source.shape.Skip(1)).ToArray(), source.dtype, source.device);
                    grown.narrow(0, 0, source.shape[0]).copy_(source);
                    cache.ObserverState.Set(key, grown);
                }
            }
        }
        catch
        {
            cache.Dispose();
            throw;
        }
        old?.Dispose();
        _slots = cache;
        var used = new bool[slotCount];
        _used.CopyTo(used, 0);
        _used = used;
    }

    private void ReleaseSlots()
    {
        _slots?.Dispose();
        _slots = null;
        Array.Clear(_used);
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
            // A row's positions end at its own cache's length, or the padded batch cache's; they start at 0 in a lane cache slot.
            var sources = all.Select(r => r.OwnCache is KvCache c ? (Cache: c, Row: 0L, End: c.Length)
                : _slots is { } s ? (Cache: s, Row: (long)r.BatchIndex, End: r.CachedLength)
                : (Cache: _cache!, Row: (long)r.BatchIndex, End: _cache!.Length)).ToArray();
            for (int i = 0; i < all.Count; i++)
            {
                var (source, sourceRow, end) = sources[i];
                int len = all[i].CachedLength;
                cache.CopyPositions(source, sourceRow, end - len, i, length - len, len);
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
        ReleaseSlots();
        foreach (var row in AllRows) row.Dispose();
    }
}
