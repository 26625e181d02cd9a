using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Modules;
using LoraMixer.Quantization;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Decoding;

/// <summary>
/// One decoding step (one new position per sequence) of a plain Llama-family model on the CPU, written in C#
/// over the weights' own memory: TorchSharp's per-operation cost (tens of microseconds, ~20 operations per
/// layer) bounds small-batch decoding, while this step is one pass over the weights. It writes the new keys
/// and values into the model's <see cref="KvCache"/> and reads the attention mask exactly as the TorchSharp
/// path does (positions from its cumulative sum, masked keys ignored), so both paths can alternate on one cache.
/// It also runs LoRA adapters (merged or not) and LoRA-Mixer projections with their block router at inference
/// (top-k, optionally restricted to some experts, or hard routing to one expert per row); MixLoRA, other observers, and anything else it does not cover keep the TorchSharp path.
/// </summary>
internal sealed unsafe class LlamaDecodeKernel
{
    private readonly LlamaForCausalLM _model;
    private readonly LlamaConfig _config;
    private readonly float[] _invFreq;
    private Workspace? _workspace;

    // What the weights were read from (module and parameter identities): while it holds, the pointers hold.
    private object?[]? _signature, _current;
    private LayerWeights[]? _layers;
    private nint _embed, _finalNorm;
    private DecodeLinear _headLinear;
    private KvCache? _cacheOfPointers;
    private nint[]? _keys, _values;

    public LlamaDecodeKernel(LlamaForCausalLM model)
    {
        _model = model;
        _config = model.Config;
        _invFreq = RotaryEmbedding.InverseFrequencies(_config.HeadDim, _config.RopeTheta, _config.RopeScaling);
    }

    /// <summary>
    /// Logits [B, 1, vocab] for ids [B, 1] after what <paramref name="cache"/> holds, or null when this step
    /// is not one the kernel covers (then nothing has changed and the caller runs the TorchSharp path).
    /// </summary>
    public Tensor? TryForward(Tensor inputIds, Tensor? attentionMask, KvCache cache)
    {
        if (inputIds.ndim != 2 || inputIds.shape[1] != 1 || _model.Device.type != DeviceType.CPU || is_grad_enabled()) return null;
        int batch = (int)inputIds.shape[0], past = cache.Length, length = past + 1;
        if (batch < 1 || length > cache.Capacity || length > _config.MaxPositionEmbeddings || cache.Batch != batch) return null;
        if (inputIds.dtype != ScalarType.Int64 && inputIds.dtype != ScalarType.Int32) return null;

        long[]? mask = null;
        if (attentionMask is not null)
        {
            if (attentionMask.ndim != 2 || attentionMask.shape[0] != batch || attentionMask.shape[1] != length || attentionMask.device_type != DeviceType.CPU) return null;
            using var scope = NewDisposeScope();
            mask = attentionMask.to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
            for (int b = 0; b < batch; b++)
                if (mask[b * length + past] == 0) return null; // a padded new position: left to the reference path
        }

        if (!Prepare(cache, batch)) return null;
        var layers = _layers!;
        nint embed = _embed, finalNorm = _finalNorm;

        long[] ids;
        using (var scope = NewDisposeScope())
            ids = inputIds.to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        foreach (long id in ids)
            if (id < 0 || id >= _config.VocabSize) return null;

        var ws = WorkspaceFor(batch, Math.Max(length, cache.Capacity));
        int workers = Math.Max(1, get_num_threads());
        var logits = empty(new long[] { batch, 1, _config.VocabSize });
        var slots = new int[batch];
        var pasts = new int[batch];
        for (int b = 0; b < batch; b++) (slots[b], pasts[b]) = (b, past);
        Step(layers, _keys!, _values!, (float*)embed, (float*)finalNorm, ids, mask, length, slots, pasts, cache.Capacity, cache, ws,
            (float*)NativeData.Of(logits), workers);
        cache.Advance(1);
        return logits;
    }

    /// <summary>Longest prompt <see cref="TryPrefill"/> runs (its scratch memory grows with the prompt, its products are not blocked).</summary>
    public const int MaxPrefillTokens = 64;

    /// <summary>
    /// Logits [1, 1, vocab] of the last of the tokens ids [1, T] (a short prompt, 2 ≤ T ≤ <see cref="MaxPrefillTokens"/>,
    /// no padding) after what <paramref name="cache"/> holds, or null when the kernel does not cover it. Its T positions
    /// run as one batch of T rows on the one sequence (see <see cref="TryPrefillRows"/>).
    /// </summary>
    public Tensor? TryPrefill(Tensor inputIds, KvCache cache)
    {
        if (inputIds.ndim != 2 || inputIds.shape[0] != 1 || inputIds.shape[1] < 2 || inputIds.shape[1] > MaxPrefillTokens) return null;
        if (cache.Batch != 1 || (inputIds.dtype != ScalarType.Int64 && inputIds.dtype != ScalarType.Int32)) return null;
        int tokens = (int)inputIds.shape[1], past = cache.Length;
        long[] ids;
        using (var scope = NewDisposeScope())
            ids = inputIds.to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        var slots = new int[tokens];
        var positions = new int[tokens];
        for (int t = 0; t < tokens; t++) positions[t] = past + t;
        var logits = empty(new long[] { 1, 1, _config.VocabSize });
        if (!TryPrefillRows(ids, slots, positions, [tokens - 1], cache, new Span<float>((float*)NativeData.Of(logits), _config.VocabSize)))
        {
            logits.Dispose();
            return null;
        }
        cache.Advance(tokens);
        return logits;
    }

    /// <summary>
    /// Prompt tokens of one or several sequences as one batch of rows: row i is token ids[i] at position
    /// positions[i] of cache sequence slots[i], and the rows of one sequence come in order and continue what that
    /// sequence holds (positions from 0 when it is new). Each layer stores every row's key and value before any row
    /// attends, and a row attends to its sequence's positions up to its own: causal attention, for every sequence at
    /// once. Writes the logits of rows <paramref name="logitRows"/> (in that order, [count, vocab]) to
    /// <paramref name="logits"/>. The cache's <see cref="KvCache.Length"/> is neither read nor advanced. False when
    /// the kernel does not cover the rows (then nothing has changed). Used for short prompts (its attention scratch
    /// memory grows with the rows, and its products are tuned for a few rows).
    /// </summary>
    public bool TryPrefillRows(long[] ids, int[] slots, int[] positions, int[] logitRows, KvCache cache, Span<float> logits)
    {
        int rows = ids.Length;
        if (rows < 1 || slots.Length != rows || positions.Length != rows || logitRows.Length < 1) return false;
        if (logits.Length < (long)logitRows.Length * _config.VocabSize || _model.Device.type != DeviceType.CPU || is_grad_enabled()) return false;
        int longest = 0;
        for (int i = 0; i < rows; i++)
        {
            if (slots[i] < 0 || slots[i] >= cache.Batch || positions[i] < 0 || positions[i] + 1 > cache.Capacity) return false;
            if (positions[i] + 1 > _config.MaxPositionEmbeddings || ids[i] < 0 || ids[i] >= _config.VocabSize) return false;
            longest = Math.Max(longest, positions[i] + 1);
        }
        foreach (int row in logitRows)
            if (row < 0 || row >= rows) return false;
        if (!Prepare(cache, rows)) return false;
        var ws = WorkspaceFor(rows, Math.Max(longest, cache.Capacity));
        int workers = Math.Max(1, get_num_threads());
        fixed (float* output = logits)
            Step(_layers!, _keys!, _values!, (float*)_embed, (float*)_finalNorm, ids, null, 0, slots, positions, cache.Capacity, cache, ws,
                output, workers, logitRows);
        return true;
    }

    /// <summary>
    /// One new token per row where every row keeps its own positions: row b is sequence <paramref name="slots"/>[b] of
    /// <paramref name="cache"/> (its batch index), which holds <paramref name="lengths"/>[b] positions from position 0
    /// (no padding); the new key and value go to position lengths[b] and the token's position is lengths[b]. The
    /// cache's own <see cref="KvCache.Length"/> is neither read nor advanced. Writes logits [batch, vocab] to
    /// <paramref name="logits"/>; false when the kernel does not apply (then nothing has changed).
    /// </summary>
    public bool TryForwardRows(long[] ids, int[] slots, int[] lengths, KvCache cache, float[] logits)
    {
        int batch = ids.Length;
        if (batch < 1 || slots.Length != batch || lengths.Length != batch || logits.Length < (long)batch * _config.VocabSize) return false;
        if (_model.Device.type != DeviceType.CPU || is_grad_enabled()) return false;
        int longest = 0;
        for (int b = 0; b < batch; b++)
        {
            if (slots[b] < 0 || slots[b] >= cache.Batch || lengths[b] < 0 || lengths[b] + 1 > cache.Capacity) return false;
            if (lengths[b] + 1 > _config.MaxPositionEmbeddings || ids[b] < 0 || ids[b] >= _config.VocabSize) return false;
            longest = Math.Max(longest, lengths[b] + 1);
        }
        if (!Prepare(cache, batch)) return false;
        var ws = WorkspaceFor(batch, Math.Max(longest, cache.Capacity));
        int workers = Math.Max(1, get_num_threads());
        fixed (float* output = logits)
            Step(_layers!, _keys!, _values!, (float*)_embed, (float*)_finalNorm, ids, null, 0, slots, lengths, cache.Capacity, cache, ws,
                output, workers);
        return true;
    }

    // A workspace of more rows serves fewer (every buffer is addressed row by row from its start), so a batch that
    // shrinks and grows again (serving) reuses it.
    private Workspace WorkspaceFor(int batch, int length) =>
        _workspace is { } w && w.Batch >= batch && w.Length >= length ? w : (_workspace = new Workspace(_config, batch, length));

    // Row b: cache sequence slots[b], pasts[b] stored positions before the new one; mask [batch, maskStride] (left padding) or null.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Step(LayerWeights[] layers, nint[] keyMemory, nint[] valueMemory, float* embed, float* finalNorm, long[] ids, long[]? mask,
        int maskStride, int[] slots, int[] pasts, int capacity, KvCache cache, Workspace ws, float* logits, int workers, int[]? logitRows = null)
    {
        var c = _config;
        int batch = ids.Length, hidden = c.HiddenSize, heads = c.NumAttentionHeads, kvHeads = c.NumKeyValueHeads, d = c.HeadDim;
        int qDim = heads * d, kvDim = kvHeads * d, inter = c.IntermediateSize;
        float eps = (float)c.RmsNormEps;
        float* x = ws.X, xn = ws.Normed, q = ws.Q, k = ws.K, v = ws.V, attn = ws.Attended, gate = ws.Gate, up = ws.Up, cos = ws.Cos, sin = ws.Sin;

        for (int b = 0; b < batch; b++)
        {
            Buffer.MemoryCopy(embed + ids[b] * hidden, x + (long)b * hidden, hidden * sizeof(float), hidden * sizeof(float));
            // Position of the new token: the number of real tokens before it (HF: cumsum(mask) - 1), else the cache length.
            int position = pasts[b];
            if (mask is not null)
            {
                position = -1;
                for (int s = 0; s <= pasts[b]; s++) position += (int)mask[(long)b * maskStride + s];
            }
            for (int i = 0; i < d / 2; i++)
            {
                float angle = position * _invFreq[i];
                cos[b * (d / 2) + i] = MathF.Cos(angle);
                sin[b * (d / 2) + i] = MathF.Sin(angle);
            }
        }

        Span<Projection> qkv = stackalloc Projection[3];
        Span<Projection> one = stackalloc Projection[1];
        Span<Projection> gateUp = stackalloc Projection[2];
        int topK = 0;
        for (int li = 0; li < layers.Length; li++)
        {
            var layer = layers[li];
            for (int b = 0; b < batch; b++) DecodeMath.RmsNorm(x + (long)b * hidden, (float*)layer.InputNorm, xn + (long)b * hidden, hidden, eps);
            // Serial attention routing: one decision per sequence from the block's normalised input, for every mixed projection.
            if (layer.Router is { } router) topK = router.DecodeRoute(xn, batch, hidden, slots, ws.Experts, ws.Gates);
            qkv[0] = layer.Q.Into(q, qDim);
            qkv[1] = layer.K.Into(k, kvDim);
            qkv[2] = layer.V.Into(v, kvDim);
            DecodeMath.MatMul(qkv, xn, hidden, batch, workers);
            ws.AddLowRank(layer.Q, xn, hidden, q, qDim, batch, topK);
            ws.AddLowRank(layer.K, xn, hidden, k, kvDim, batch, topK);
            ws.AddLowRank(layer.V, xn, hidden, v, kvDim, batch, topK);

            float* keys = (float*)keyMemory[li], values = (float*)valueMemory[li];
            for (int b = 0; b < batch; b++)
            {
                float* cb = cos + b * (d / 2), sb = sin + b * (d / 2);
                for (int h = 0; h < heads; h++) Rotate(q + (long)b * qDim + h * d, cb, sb, d);
                for (int h = 0; h < kvHeads; h++)
                {
                    float* kh = k + (long)b * kvDim + h * d;
                    Rotate(kh, cb, sb, d);
                    long slot = (((long)slots[b] * kvHeads + h) * capacity + pasts[b]) * d;
                    Buffer.MemoryCopy(kh, keys + slot, d * sizeof(float), d * sizeof(float));
                    Buffer.MemoryCopy(v + (long)b * kvDim + h * d, values + slot, d * sizeof(float), d * sizeof(float));
                }
            }
            Attend(q, keys, values, attn, mask, maskStride, slots, pasts, batch, capacity, ws.Scores, ws.Length, workers);

            one[0] = layer.O.Into(xn, hidden);
            DecodeMath.MatMul(one, attn, qDim, batch, workers);
            ws.AddLowRank(layer.O, attn, qDim, xn, hidden, batch, topK);
            DecodeMath.Add(x, xn, (long)batch * hidden);

            for (int b = 0; b < batch; b++) DecodeMath.RmsNorm(x + (long)b * hidden, (float*)layer.PostNorm, xn + (long)b * hidden, hidden, eps);
            gateUp[0] = layer.Gate.Into(gate, inter);
            gateUp[1] = layer.Up.Into(up, inter);
            DecodeMath.MatMul(gateUp, xn, hidden, batch, workers);
            ws.AddLowRank(layer.Gate, xn, hidden, gate, inter, batch, topK);
            ws.AddLowRank(layer.Up, xn, hidden, up, inter, batch, topK);
            DecodeMath.SiluMul(gate, up, batch, inter);
            one[0] = layer.Down.Into(xn, hidden);
            DecodeMath.MatMul(one, gate, inter, batch, workers);
            ws.AddLowRank(layer.Down, gate, inter, xn, hidden, batch, topK);
            DecodeMath.Add(x, xn, (long)batch * hidden);
        }

        // Logits of every row, or (a prefill) of the rows asked for, normalised into the first rows of xn.
        int count = logitRows?.Length ?? batch;
        for (int j = 0; j < count; j++) DecodeMath.RmsNorm(x + (long)(logitRows?[j] ?? j) * hidden, finalNorm, xn + (long)j * hidden, hidden, eps);
        one[0] = _headLinear.Into(logits, c.VocabSize);
        DecodeMath.MatMul(one, xn, hidden, count, workers);
    }

    // HF rotate_half: dimension i pairs with i + d/2.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rotate(float* x, float* cos, float* sin, int d)
    {
        int half = d / 2;
        for (int i = 0; i < half; i++)
        {
            float x1 = x[i], x2 = x[i + half];
            x[i] = x1 * cos[i] - x2 * sin[i];
            x[i + half] = x2 * cos[i] + x1 * sin[i];
        }
    }

    // softmax(q kᵀ/√d + mask) v per row and query head, over the first pasts[b] + 1 positions of the row's cache sequence.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Attend(float* q, float* keys, float* values, float* output, long[]? mask, int maskStride, int[] slots, int[] pasts, int batch,
        int capacity, float* scores, int scoreStride, int workers)
    {
        var c = _config;
        int heads = c.NumAttentionHeads, kvHeads = c.NumKeyValueHeads, d = c.HeadDim, group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(d);
        nint qs = (nint)q, ks = (nint)keys, vs = (nint)values, os = (nint)output, ss = (nint)scores;
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void One(int job)
        {
            int b = job / heads, h = job % heads, kvh = h / group, length = pasts[b] + 1;
            float* qh = (float*)qs + ((long)b * heads + h) * d;
            float* kb = (float*)ks + ((long)slots[b] * kvHeads + kvh) * capacity * d;
            float* vb = (float*)vs + ((long)slots[b] * kvHeads + kvh) * capacity * d;
            float* sc = (float*)ss + (long)job * scoreStride;
            float max = float.NegativeInfinity;
            for (int s = 0; s < length; s++)
            {
                if (mask is not null && mask[(long)b * maskStride + s] == 0) { sc[s] = float.NegativeInfinity; continue; }
                float score = DecodeMath.Dot(qh, kb + (long)s * d, d) * scale;
                sc[s] = score;
                if (score > max) max = score;
            }
            float sum = 0;
            for (int s = 0; s < length; s++)
            {
                float e = sc[s] == float.NegativeInfinity ? 0f : MathF.Exp(sc[s] - max);
                sc[s] = e;
                sum += e;
            }
            float* oh = (float*)os + ((long)b * heads + h) * d;
            new Span<float>(oh, d).Clear();
            float inv = 1f / sum;
            for (int s = 0; s < length; s++)
                if (sc[s] != 0f) DecodeMath.AddScaled(oh, vb + (long)s * d, sc[s] * inv, d);
        }
        int jobs = batch * heads;
        long work = 0;
        for (int b = 0; b < batch; b++) work += (long)heads * (pasts[b] + 1) * d;
        if (workers > 1 && work >= 1 << 15)
            DecodeParallel.For(jobs, workers, One);
        else
            for (int j = 0; j < jobs; j++) One(j);
    }

    // Reads the weights' addresses when the model's modules or parameters changed since the last step, the cache's
    // when the cache changed, and checks every router can decode this step; false when the kernel does not apply.
    private bool Prepare(KvCache cache, int batch)
    {
        var blocks = _model.model.layers;
        int count = blocks.Count;
        const int perLayer = 23;
        var current = _current ??= new object?[count * perLayer + 4];
        for (int i = 0; i < count; i++)
        {
            var layer = blocks[i];
            int o = i * perLayer;
            var attention = layer.self_attn;
            var mlp = layer.mlp;
            current[o] = layer.AttentionInputObserver;
            current[o + 1] = layer.MlpInputObserver;
            current[o + 2] = attention.q_proj; current[o + 3] = attention.k_proj; current[o + 4] = attention.v_proj; current[o + 5] = attention.o_proj;
            current[o + 6] = mlp.gate_proj; current[o + 7] = mlp.up_proj; current[o + 8] = mlp.down_proj;
            current[o + 9] = DecodeLinear.Identity(attention.q_proj); current[o + 10] = DecodeLinear.Identity(attention.k_proj); current[o + 11] = DecodeLinear.Identity(attention.v_proj);
            current[o + 12] = DecodeLinear.Identity(attention.o_proj); current[o + 13] = DecodeLinear.Identity(mlp.gate_proj); current[o + 14] = DecodeLinear.Identity(mlp.up_proj);
            current[o + 15] = DecodeLinear.Identity(mlp.down_proj);
            current[o + 16] = DecodeLinear.State(attention.q_proj); current[o + 17] = DecodeLinear.State(attention.k_proj); current[o + 18] = DecodeLinear.State(attention.v_proj);
            current[o + 19] = DecodeLinear.State(attention.o_proj); current[o + 20] = DecodeLinear.State(mlp.gate_proj); current[o + 21] = DecodeLinear.State(mlp.up_proj);
            current[o + 22] = DecodeLinear.State(mlp.down_proj);
        }
        // The embedding module, not its weight: TorchSharp's Embedding.weight wraps the native parameter in a new
        // object on every read (which made every step look like a changed model and re-read all addresses).
        current[^4] = Int8Quantizer.Of(_model);
        current[^3] = _model.model.embed_tokens;
        current[^2] = _model.lm_head;
        current[^1] = _model.lm_head is TorchSharp.Modules.Linear lm ? lm.weight : null;
        if (_signature is null || !current.AsSpan().SequenceEqual(_signature, ReferenceEqualityComparer.Instance))
        {
            _layers = Gather();
            _signature = _layers is null ? null : (object?[])current.Clone();
            _cacheOfPointers = null;
        }
        if (_layers is null) return false;
        if (!ReferenceEquals(_cacheOfPointers, cache))
        {
            _keys = new nint[count];
            _values = new nint[count];
            for (int i = 0; i < count; i++)
                if (!TryData(cache.Keys(i), out _keys[i]) || !TryData(cache.Values(i), out _values[i])) return false;
            _cacheOfPointers = cache;
        }
        foreach (var layer in _layers)
            if (layer.Router is { } router && !router.CanDecode(cache, (int)cache.Batch, batch)) return false;
        return true;
    }

    private LayerWeights[]? Gather()
    {
        var layers = _model.model.layers;
        var result = new LayerWeights[layers.Count];
        if (!TryData(_model.model.EmbeddingWeight, out _embed) || !TryData(_model.model.norm.Weight, out _finalNorm)) return null;
        nint head = _embed;
        if (_model.lm_head is not null
            && (_model.lm_head is not TorchSharp.Modules.Linear lmHead || lmHead.bias is not null || !TryData(lmHead.weight, out head))) return null;
        var int8 = Int8Quantizer.Of(_model);
        _headLinear = DecodeLinear.Head(head, _config.VocabSize, _config.HiddenSize, int8);
        for (int i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            var attention = layer.self_attn;
            var mlp = layer.mlp;
            if (layer.MlpInputObserver is not null) return null;
            RoutingSlot? router = null;
            if (!DecodeLinear.TryCreate(attention.q_proj, ref router, out var q, int8) || !DecodeLinear.TryCreate(attention.k_proj, ref router, out var k, int8)
                || !DecodeLinear.TryCreate(attention.v_proj, ref router, out var v, int8) || !DecodeLinear.TryCreate(attention.o_proj, ref router, out var o, int8)
                || !DecodeLinear.TryCreate(mlp.gate_proj, ref router, out var gate, int8) || !DecodeLinear.TryCreate(mlp.up_proj, ref router, out var up, int8)
                || !DecodeLinear.TryCreate(mlp.down_proj, ref router, out var down, int8) || gate.Bias != 0 || up.Bias != 0 || down.Bias != 0
                || !TryData(layer.input_layernorm.Weight, out nint inNorm) || !TryData(layer.post_attention_layernorm.Weight, out nint postNorm))
                return null;
            // The block's observer must be the router its mixed projections follow (LoRA-Mixer block scope), nothing else.
            if ((layer.AttentionInputObserver is null) != (router is null)) return null;
            if (router is not null && router.LayerIndex != i) return null;
            result[i] = new LayerWeights(inNorm, q, k, v, o, postNorm, gate, up, down, router);
        }
        return result;
    }

    private static bool TryData(Tensor? t, out nint data) => NativeData.TryFloat(t, out data);

    private sealed record LayerWeights(nint InputNorm, DecodeLinear Q, DecodeLinear K, DecodeLinear V, DecodeLinear O, nint PostNorm,
        DecodeLinear Gate, DecodeLinear Up, DecodeLinear Down, RoutingSlot? Router);

    // Pinned scratch memory of one batch size, reused across steps.
    private sealed class Workspace
    {
        private readonly float[] _memory;

        public Workspace(LlamaConfig c, int batch, int capacity)
        {
            Batch = batch;
            Experts = new int[batch * RoutingSlot.MaxDecodeTopK];
            Gates = new float[batch * RoutingSlot.MaxDecodeTopK];
            Length = capacity;
            long hidden = c.HiddenSize, qDim = c.NumAttentionHeads * c.HeadDim, kvDim = c.NumKeyValueHeads * c.HeadDim, inter = c.IntermediateSize;
            long[] sizes =
            {
                batch * hidden, batch * hidden, batch * qDim, batch * kvDim, batch * kvDim, batch * qDim, batch * inter, batch * inter,
                batch * c.HeadDim / 2, batch * c.HeadDim / 2, (long)batch * c.NumAttentionHeads * capacity,
            };
            var buffers = NativeData.PinnedBuffers(sizes, out _memory);
            X = (float*)buffers[0];
            Normed = (float*)buffers[1];
            Q = (float*)buffers[2];
            K = (float*)buffers[3];
            V = (float*)buffers[4];
            Attended = (float*)buffers[5];
            Gate = (float*)buffers[6];
            Up = (float*)buffers[7];
            Cos = (float*)buffers[8];
            Sin = (float*)buffers[9];
            Scores = (float*)buffers[10];
        }

        public int Batch { get; }
        public int Length { get; }

        /// <summary>Chosen experts [batch, k] of the current block.</summary>
        public int[] Experts { get; }

        /// <summary>Their routing weights [batch, k].</summary>
        public float[] Gates { get; }

        /// <summary>
        /// y[b] += Σ_j g_j s_e B_e A_e x[b] over the chosen experts (or the adapter's one expert), on the calling thread:
        /// the k·r-wide products are far too small for a parallel loop. The k experts' A x are computed first, then
        /// each output row sums its k short dot products, so y is read and written once.
        /// </summary>
        public void AddLowRank(DecodeLinear linear, float* x, int inDim, float* y, long yStride, int batch, int topK) =>
            linear.AddLowRank(x, inDim, y, yStride, batch, topK, Experts, Gates);

        public float* X { get; }
        public float* Normed { get; }
        public float* Q { get; }
        public float* K { get; }
        public float* V { get; }
        public float* Attended { get; }
        public float* Gate { get; }
        public float* Up { get; }
        public float* Cos { get; }
        public float* Sin { get; }
        public float* Scores { get; }
    }
}
