using static TorchSharp.torch;

namespace LoraMixer.Models.Mamba;

/// <summary>
/// Mamba-1's selective scan (HF <c>MambaMixer.slow_forward</c>, step 3), per channel d and state n:
/// <c>h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t x_t</c> and <c>y_t = C_t · h_t</c> (the D skip and the
/// gate are the mixer's). Shapes: x and Δ [B, D, T], A [D, N], B and C [B, T, N], state [B, D, N].
/// </summary>
public static class SelectiveScan
{
    /// <summary>
    /// Elements of one [B, L, D, N] chunk tensor that the automatic chunk length aims at (256 KiB of
    /// float32): small enough to stay in cache, since the chunked scan is memory-bound on CPU.
    /// </summary>
    public const long ChunkElementBudget = 1 << 16;

    /// <summary>
    /// The automatic chunk length for a batch, inner width and state size: 16 when its chunk tensors fit
    /// <see cref="ChunkElementBudget"/>, else 8. Below 8 the
    /// per-chunk dispatch cost dominates; above 16 the cache misses do (measured with <c>bench mamba-scan</c>).
    /// </summary>
    public static int AutoChunkSize(long batch, long innerSize, long stateSize)
    {
        int length = 16;
        while (length > 8 && length * batch * innerSize * stateSize > ChunkElementBudget) length /= 2;
        return length;
    }

    /// <summary>
    /// Largest total log-decay a chunk may span (beyond its first step), so that exp(±span) stays far
    /// inside float32's range (e^40 ≈ 2·10¹⁷).
    /// </summary>
    public const double MaxChunkLogDecay = 40;

    /// <summary>
    /// The recurrence one position at a time, as HF's slow path writes it: the reference for
    /// <see cref="Chunked"/>, and the decoding step (T = 1). Returns y [B, D, T] and the final state.
    /// </summary>
    public static (Tensor Y, Tensor State) Sequential(Tensor x, Tensor delta, Tensor a, Tensor b, Tensor c, Tensor? state = null)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], d = x.shape[1], t = x.shape[2], n = a.shape[1];
        bool keepGraph = NeedsGraph(x, delta, a, b, c, state);
        var h = state ?? zeros(new[] { batch, d, n }, device: x.device);
        // Time-major [B, T, D, N] so that each step reads one contiguous slice.
        var deltaT = delta.transpose(1, 2);
        var decay = (deltaT.unsqueeze(-1) * a).exp();
        var input = (deltaT * x.transpose(1, 2)).unsqueeze(-1) * b.unsqueeze(2);
        var ys = new Tensor[t];
        for (int i = 0; i < t; i++)
        {
            using var step = NewDisposeScope();
            var next = decay.select(1, i) * h + input.select(1, i);
            ys[i] = next.bmm(c.select(1, i).unsqueeze(-1)).MoveToOuterDisposeScope();   // [B, D, 1]
            if (!keepGraph && !ReferenceEquals(h, state)) h.Dispose();
            h = next.MoveToOuterDisposeScope();
        }
        var y = cat(ys, 2);
        return (y.MoveToOuterDisposeScope(), h.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The same recurrence, a chunk of positions per step. Within a chunk starting at s, with
    /// <c>r_t = Σ_{s&lt;u≤t} Δ_u A</c> (the log-decay from s to t), the closed form is
    /// <c>h_t = exp(r_t) ⊙ (exp(Δ_s A) h_{s−1} + Σ_{s≤u≤t} exp(−r_u) Δ_u B_u x_u)</c>: two cumulative sums and
    /// a handful of element-wise products over [B, L, D, N] instead of L dependent steps, and y from one
    /// batched matrix product. Chunks end before <see cref="MaxChunkLogDecay"/> of decay (bounded by the
    /// largest Δ·|A| of each position over the whole batch) or at <paramref name="maxChunk"/> positions (default <see cref="AutoChunkSize"/>),
    /// so exp(±r) never overflows; a single position always forms a valid chunk. Memory is O(B·L·D·N)
    /// beyond the inputs and outputs.
    /// </summary>
    public static (Tensor Y, Tensor State) Chunked(Tensor x, Tensor delta, Tensor a, Tensor b, Tensor c, Tensor? state = null, int? maxChunk = null)
    {
        if (maxChunk < 1) throw new ArgumentOutOfRangeException(nameof(maxChunk), "a chunk holds at least one position");
        using var scope = NewDisposeScope();
        long batch = x.shape[0], d = x.shape[1], n = a.shape[1];
        // In-place updates save memory traffic but would break autograd's saved tensors: only without a graph.
        bool inPlace = !NeedsGraph(x, delta, a, b, c, state);
        var h = state ?? zeros(new[] { batch, d, n }, device: x.device);
        var deltaT = delta.transpose(1, 2);                                                  // [B, T, D]
        var xT = x.transpose(1, 2);
        var ys = new List<Tensor>();
        foreach (var (start, length) in Chunks(delta, a, maxChunk ?? AutoChunkSize(batch, d, n)))
        {
            using var chunkScope = NewDisposeScope();
            var dl = deltaT.narrow(1, start, length);
            var logDecay = dl.unsqueeze(-1) * a;                                             // [B, L, D, N]
            var carried = logDecay.select(1, 0).exp() * h;                                   // exp(Δ_s A) h_{s−1}
            // r_t excludes the chunk's first step, whose decay applies to the carried state only.
            if (inPlace) logDecay.select(1, 0).zero_();
            else logDecay = cat(new[] { zeros_like(logDecay.narrow(1, 0, 1)), logDecay.narrow(1, 1, length - 1) }, 1);
            var er = inPlace ? logDecay.cumsum(1).exp_() : logDecay.cumsum(1).exp();
            var input = (dl * xT.narrow(1, start, length)).unsqueeze(-1) * b.narrow(1, start, length).unsqueeze(2);
            input = inPlace ? input.div_(er) : input / er;
            var hs = input.cumsum(1);
            hs = inPlace ? hs.add_(carried.unsqueeze(1)).mul_(er) : (hs + carried.unsqueeze(1)) * er;
            var y = hs.view(batch * length, d, n).bmm(c.narrow(1, start, length).reshape(batch * length, n, 1));
            ys.Add(y.view(batch, length, d).MoveToOuterDisposeScope());                       // [B, L, D]
            h = hs.select(1, length - 1).contiguous().MoveToOuterDisposeScope();
        }
        var all = ys.Count == 1 ? ys[0] : cat(ys, 1);
        return (all.transpose(1, 2).contiguous().MoveToOuterDisposeScope(), h.MoveToOuterDisposeScope());
    }

    private static bool NeedsGraph(params Tensor?[] tensors) =>
        is_grad_enabled() && tensors.Any(t => t is not null && t.requires_grad);

    /// <summary>
    /// Chunk boundaries (start, length) over T: greedy, each chunk as long as the summed per-position
    /// bound max_{b,d}(Δ·max_n|A|) after its first step stays within <see cref="MaxChunkLogDecay"/>.
    /// </summary>
    public static IReadOnlyList<(long Start, long Length)> Chunks(Tensor delta, Tensor a, int maxChunk)
    {
        long t = delta.shape[2];
        float[] bound;
        using (var scope = NewDisposeScope())
        {
            var perChannel = a.detach().abs().amax(new long[] { 1 });                                   // [D]
            var perPosition = (delta.detach() * perChannel.unsqueeze(-1)).amax(new long[] { 0, 1 }); // [T]
            bound = perPosition.to(CPU).data<float>().ToArray();
        }
        var chunks = new List<(long, long)>();
        for (long start = 0; start < t;)
        {
            long length = 1;
            double span = 0;
            while (start + length < t && length < maxChunk && span + bound[start + length] <= MaxChunkLogDecay)
                span += bound[start + length++];
            chunks.Add((start, length));
            start += length;
        }
        return chunks;
    }
}
