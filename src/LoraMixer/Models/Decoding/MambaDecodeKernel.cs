using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Quantization;
using LoraMixer.Models.Mamba;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Decoding;

/// <summary>
/// One decoding step (one new position per sequence) of a Mamba-1 / Falcon-Mamba model on the CPU, written in C#
/// over the weights' own memory, as <see cref="LlamaDecodeKernel"/> is for the Llama family: RMS norm, in_proj,
/// the convolution state rolled and convolved, SiLU, x_proj (and Falcon-Mamba's B/C/Δ norms), dt_proj with its
/// softplus, the selective state update, the D skip and the SiLU(z) gate, out_proj, the residual; then the final
/// norm and the LM head. It reads and writes the <see cref="MambaCache"/> states in place, so it and the TorchSharp
/// path can alternate on one cache. LoRA adapters and LoRA-Mixer projections with their block router (top-k) run
/// too; a padded new position, other observers and anything else it does not cover keep the TorchSharp path.
/// </summary>
internal sealed unsafe class MambaDecodeKernel
{
    private readonly MambaForCausalLM _model;
    private readonly MambaConfig _config;
    private Workspace? _workspace;

    // What the weights were read from (module and parameter identities): while it holds, the pointers hold.
    private object?[]? _signature, _current;
    private LayerWeights[]? _layers;
    private nint _embed, _finalNorm;
    private DecodeLinear _headLinear;
    private MambaCache? _cacheOfPointers;
    private nint[]? _conv, _ssm;

    public MambaDecodeKernel(MambaForCausalLM model)
    {
        _model = model;
        _config = model.Config;
    }

    /// <summary>
    /// Logits [B, 1, vocab] for ids [B, 1] after what <paramref name="cache"/> holds, or null when this step
    /// is not one the kernel covers (then nothing has changed and the caller runs the TorchSharp path).
    /// </summary>
    public Tensor? TryForward(Tensor inputIds, Tensor? attentionMask, MambaCache cache)
    {
        if (inputIds.ndim != 2 || inputIds.shape[1] != 1 || _model.Device.type != DeviceType.CPU || is_grad_enabled()) return null;
        if (inputIds.dtype != ScalarType.Int64 && inputIds.dtype != ScalarType.Int32) return null;
        int batch = (int)inputIds.shape[0];
        if (batch < 1 || cache.SsmState(0).shape[0] != batch) return null;
        if (attentionMask is not null)
        {
            // Only the new position's column matters (the past lives in the states); a padded one is left to the reference.
            if (attentionMask.ndim != 2 || attentionMask.shape[0] != batch || attentionMask.shape[1] < 1) return null;
            using var scope = NewDisposeScope();
            var last = attentionMask.narrow(1, attentionMask.shape[1] - 1, 1).to_type(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
            if (last.Any(v => v == 0)) return null;
        }
        if (!Prepare(cache, batch)) return null;

        long[] ids;
        using (var scope = NewDisposeScope())
            ids = inputIds.to_type(ScalarType.Int64).contiguous().data<long>().ToArray();
        foreach (long id in ids)
            if (id < 0 || id >= _config.VocabSize) return null;

        var ws = _workspace is { } w && w.Batch == batch ? w : (_workspace = new Workspace(_config, batch));
        int workers = Math.Max(1, get_num_threads());
        var logits = empty(new long[] { batch, 1, _config.VocabSize });
        Step(_layers!, ids, cache, ws, (float*)NativeData.Of(logits), workers);
        cache.Advance(1);
        return logits;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Step(LayerWeights[] layers, long[] ids, MambaCache cache, Workspace ws, float* logits, int workers)
    {
        var c = _config;
        int batch = ids.Length, hidden = c.HiddenSize, inner = c.IntermediateSize, rank = c.TimeStepRank, n = c.StateSize;
        int kernel = c.ConvKernel, paramsDim = rank + 2 * n;
        float eps = (float)c.LayerNormEpsilon;
        float* x = ws.X, xn = ws.Normed, xz = ws.Xz, u = ws.U, par = ws.Parameters, dtIn = ws.DtInput, delta = ws.Delta, y = ws.Y;
        float* embed = (float*)_embed;
        for (int b = 0; b < batch; b++)
            Buffer.MemoryCopy(embed + ids[b] * hidden, x + (long)b * hidden, hidden * sizeof(float), hidden * sizeof(float));

        Span<Projection> one = stackalloc Projection[1];
        int topK = 0;
        for (int li = 0; li < layers.Length; li++)
        {
            var layer = layers[li];
            for (int b = 0; b < batch; b++) DecodeMath.RmsNorm(x + (long)b * hidden, (float*)layer.Norm, xn + (long)b * hidden, hidden, eps);
            // Block routing: one decision per sequence from the mixer's normalised input, for every mixed projection.
            if (layer.Router is { } router) topK = router.DecodeRoute(xn, batch, hidden, ws.Slots, ws.Experts, ws.Gates);

            one[0] = layer.InProj.Into(xz, 2L * inner);
            DecodeMath.MatMul(one, xn, hidden, batch, workers);
            ws.AddLowRank(layer.InProj, xn, hidden, xz, 2L * inner, batch, topK);

            // Causal depthwise convolution over [the last K−1 inputs | the new one], then the state rolls by one.
            float* convWeight = (float*)layer.ConvWeight, convBias = (float*)layer.ConvBias, convState = (float*)_conv![li];
            for (int b = 0; b < batch; b++)
            {
                float* xb = xz + (long)b * 2 * inner, ub = u + (long)b * inner;
                for (int d = 0; d < inner; d++)
                {
                    float* s = convState + ((long)b * inner + d) * (kernel - 1), wd = convWeight + (long)d * kernel;
                    float v = xb[d], sum = convBias == null ? 0f : convBias[d];
                    for (int j = 0; j < kernel - 1; j++) sum += wd[j] * s[j];
                    sum += wd[kernel - 1] * v;
                    for (int j = 0; j < kernel - 2; j++) s[j] = s[j + 1];
                    if (kernel > 1) s[kernel - 2] = v;
                    ub[d] = sum;
                }
            }
            MambaMixerKernel.SiluInPlace(u, (long)batch * inner);

            one[0] = layer.XProj.Into(par, paramsDim);
            DecodeMath.MatMul(one, u, inner, batch, workers);
            ws.AddLowRank(layer.XProj, u, inner, par, paramsDim, batch, topK);
            for (int b = 0; b < batch; b++)
            {
                float* pb = par + (long)b * paramsDim;
                if (c.NormalizesBcDt)
                {
                    // Falcon-Mamba: weightless RMS norm of Δ, B and C (HF rms_forward).
                    float mixerEps = (float)c.MixerRmsEps;
                    Normalize(pb, rank, mixerEps);
                    Normalize(pb + rank, n, mixerEps);
                    Normalize(pb + rank + n, n, mixerEps);
                }
                Buffer.MemoryCopy(pb, dtIn + (long)b * rank, rank * sizeof(float), rank * sizeof(float));
            }

            one[0] = layer.DtProj.Into(delta, inner);
            DecodeMath.MatMul(one, dtIn, rank, batch, workers);
            ws.AddLowRank(layer.DtProj, dtIn, rank, delta, inner, batch, topK);
            MambaMixerKernel.SoftplusInPlace(delta, (long)batch * inner);

            UpdateState(layer, (float*)_ssm![li], u, delta, par, paramsDim, y, batch, inner, rank, n, workers);
            for (int b = 0; b < batch; b++) MambaMixerKernel.GateInPlace(y + (long)b * inner, xz + (long)b * 2 * inner + inner, inner);

            one[0] = layer.OutProj.Into(xn, hidden);
            DecodeMath.MatMul(one, y, inner, batch, workers);
            ws.AddLowRank(layer.OutProj, y, inner, xn, hidden, batch, topK);
            DecodeMath.Add(x, xn, (long)batch * hidden);
        }

        for (int b = 0; b < batch; b++) DecodeMath.RmsNorm(x + (long)b * hidden, (float*)_finalNorm, xn + (long)b * hidden, hidden, eps);
        one[0] = _headLinear.Into(logits, c.VocabSize);
        DecodeMath.MatMul(one, xn, hidden, batch, workers);
    }

    // h = exp(Δ A) ⊙ h + Δ u B and y = C · h + D u per sequence and channel, A = −exp(A_log); the state in place.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void UpdateState(LayerWeights layer, float* ssm, float* u, float* delta, float* par, int paramsDim, float* y,
        int batch, int inner, int rank, int n, int workers)
    {
        nint ss = (nint)ssm, us = (nint)u, ds = (nint)delta, ps = (nint)par, ys = (nint)y;
        nint aLog = layer.ALog, dSkip = layer.D;
        // A few parts per worker, so that a core taken by another process does not hold the step up.
        int parts = workers > 1 && (long)batch * inner * n >= 1 << 14 ? 4 * workers : 1;
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Part(int part)
        {
            long total = (long)batch * inner;
            long lo = total * part / parts, hi = total * (part + 1) / parts;
            for (long job = lo; job < hi; job++)
            {
                int b = (int)(job / inner), d = (int)(job % inner);
                float* h = (float*)ss + job * n, al = (float*)aLog + (long)d * n;
                float* bt = (float*)ps + (long)b * paramsDim + rank, ct = bt + n;
                float dt = ((float*)ds)[job], uv = ((float*)us)[job], dtu = dt * uv;
                float acc = 0;
                int i = 0;
                if (n >= 8)
                {
                    var vdt = Vector256.Create(dt);
                    var vdtu = Vector256.Create(dtu);
                    var vacc = Vector256<float>.Zero;
                    for (; i <= n - 8; i += 8)
                    {
                        var decay = MambaMixerKernel.Exp(-vdt * MambaMixerKernel.Exp(Vector256.Load(al + i)));
                        var hv = decay * Vector256.Load(h + i) + vdtu * Vector256.Load(bt + i);
                        Vector256.Store(hv, h + i);
                        vacc += hv * Vector256.Load(ct + i);
                    }
                    acc = Vector256.Sum(vacc);
                }
                for (; i < n; i++)
                {
                    float hv = MathF.Exp(-dt * MathF.Exp(al[i])) * h[i] + dtu * bt[i];
                    h[i] = hv;
                    acc += hv * ct[i];
                }
                ((float*)ys)[job] = acc + uv * ((float*)dSkip)[d];
            }
        }
        if (parts > 1) DecodeParallel.For(parts, workers, Part);
        else Part(0);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Normalize(float* v, int count, float eps)
    {
        float scale = 1f / MathF.Sqrt(DecodeMath.Dot(v, v, count) / count + eps);
        for (int i = 0; i < count; i++) v[i] *= scale;
    }

    // Reads the weights' addresses when the model's modules or parameters changed since the last step, the cache's
    // when the cache changed, and checks every router can decode this step; false when the kernel does not apply.
    private bool Prepare(MambaCache cache, int batch)
    {
        var blocks = _model.backbone.layers;
        int count = blocks.Count;
        const int perLayer = 16;
        var current = _current ??= new object?[count * perLayer + 4];
        for (int i = 0; i < count; i++)
        {
            var block = blocks[i];
            var mixer = block.mixer;
            int o = i * perLayer;
            current[o] = block.MixerInputObserver;
            current[o + 1] = mixer.in_proj; current[o + 2] = mixer.x_proj; current[o + 3] = mixer.dt_proj; current[o + 4] = mixer.out_proj;
            current[o + 5] = DecodeLinear.Identity(mixer.in_proj); current[o + 6] = DecodeLinear.Identity(mixer.x_proj); current[o + 7] = DecodeLinear.Identity(mixer.dt_proj);
            current[o + 8] = DecodeLinear.Identity(mixer.out_proj);
            current[o + 9] = DecodeLinear.State(mixer.in_proj); current[o + 10] = DecodeLinear.State(mixer.x_proj); current[o + 11] = DecodeLinear.State(mixer.dt_proj);
            current[o + 12] = DecodeLinear.State(mixer.out_proj);
            current[o + 13] = mixer.A_log; current[o + 14] = mixer.D; current[o + 15] = block.norm.Weight;
        }
        // Modules, not their weights: TorchSharp may wrap a native parameter in a new object on every read.
        current[^4] = Int8Quantizer.Of(_model);
        current[^3] = _model.backbone.embeddings;
        current[^2] = _model.lm_head;
        current[^1] = _model.backbone.norm_f.Weight;
        if (_signature is null || !current.AsSpan().SequenceEqual(_signature, ReferenceEqualityComparer.Instance))
        {
            _layers = Gather();
            _signature = _layers is null ? null : (object?[])current.Clone();
            _cacheOfPointers = null;
        }
        if (_layers is null) return false;
        if (!ReferenceEquals(_cacheOfPointers, cache))
        {
            _conv = new nint[count];
            _ssm = new nint[count];
            for (int i = 0; i < count; i++)
                if (!NativeData.TryFloat(cache.ConvState(i), out _conv[i]) || !NativeData.TryFloat(cache.SsmState(i), out _ssm[i])) return false;
            _cacheOfPointers = cache;
        }
        foreach (var layer in _layers)
            if (layer.Router is { } router && !router.CanDecode(cache, batch, batch)) return false;
        return true;
    }

    private LayerWeights[]? Gather()
    {
        var c = _config;
        var blocks = _model.backbone.layers;
        var result = new LayerWeights[blocks.Count];
        if (!NativeData.TryFloat(_model.backbone.EmbeddingWeight, out _embed) || !NativeData.TryFloat(_model.backbone.norm_f.Weight, out _finalNorm)) return null;
        nint head = _embed;
        if (_model.lm_head is not null
            && (_model.lm_head is not TorchSharp.Modules.Linear lmHead || lmHead.bias is not null || !NativeData.TryFloat(lmHead.weight, out head))) return null;
        var int8 = Int8Quantizer.Of(_model);
        _headLinear = DecodeLinear.Head(head, c.VocabSize, c.HiddenSize, int8);
        for (int i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i];
            var mixer = block.mixer;
            RoutingSlot? router = null;
            var conv = mixer.conv1d;
            nint convBias = 0;
            if (!DecodeLinear.TryCreate(mixer.in_proj, ref router, out var inProj, int8) || !DecodeLinear.TryCreate(mixer.x_proj, ref router, out var xProj, int8)
                || !DecodeLinear.TryCreate(mixer.dt_proj, ref router, out var dtProj, int8) || !DecodeLinear.TryCreate(mixer.out_proj, ref router, out var outProj, int8)
                || inProj.Out != 2 * c.IntermediateSize || xProj.Out != c.TimeStepRank + 2 * c.StateSize || xProj.Bias != 0
                || dtProj.Out != c.IntermediateSize || outProj.Out != c.HiddenSize
                || !NativeData.TryFloat(block.norm.Weight, out nint norm) || !NativeData.TryFloat(conv.weight, out nint convWeight)
                || (conv.bias is not null && !NativeData.TryFloat(conv.bias, out convBias))
                || !NativeData.TryFloat(mixer.A_log, out nint aLog) || !NativeData.TryFloat(mixer.D, out nint d))
                return null;
            // The block's observer must be the router its mixed projections follow (LoRA-Mixer block scope), nothing else.
            if ((block.MixerInputObserver is null) != (router is null)) return null;
            if (router is not null && router.LayerIndex != i) return null;
            result[i] = new LayerWeights(norm, inProj, convWeight, convBias, xProj, dtProj, aLog, d, outProj, router);
        }
        return result;
    }

    private sealed record LayerWeights(nint Norm, DecodeLinear InProj, nint ConvWeight, nint ConvBias, DecodeLinear XProj, DecodeLinear DtProj,
        nint ALog, nint D, DecodeLinear OutProj, RoutingSlot? Router);

    // Pinned scratch memory of one batch size, reused across steps.
    private sealed class Workspace
    {
        private readonly float[] _memory;

        public Workspace(MambaConfig c, int batch)
        {
            Batch = batch;
            Experts = new int[batch * RoutingSlot.MaxDecodeTopK];
            Gates = new float[batch * RoutingSlot.MaxDecodeTopK];
            Slots = Enumerable.Range(0, batch).ToArray();
            long hidden = c.HiddenSize, inner = c.IntermediateSize, rank = c.TimeStepRank, n = c.StateSize;
            long[] sizes = { batch * hidden, batch * hidden, batch * 2 * inner, batch * inner, batch * (rank + 2 * n), batch * rank, batch * inner, batch * inner };
            var buffers = NativeData.PinnedBuffers(sizes, out _memory);
            X = (float*)buffers[0];
            Normed = (float*)buffers[1];
            Xz = (float*)buffers[2];
            U = (float*)buffers[3];
            Parameters = (float*)buffers[4];
            DtInput = (float*)buffers[5];
            Delta = (float*)buffers[6];
            Y = (float*)buffers[7];
        }

        public int Batch { get; }

        /// <summary>Row b is cache sequence b (the router's per-sequence state).</summary>
        public int[] Slots { get; }

        /// <summary>Chosen experts [batch, k] of the current block.</summary>
        public int[] Experts { get; }

        /// <summary>Their routing weights [batch, k].</summary>
        public float[] Gates { get; }

        /// <summary>y[b] += Σ_j g_j s_e B_e A_e x[b] over the chosen experts (or the adapter's one expert), on the calling thread.</summary>
        public void AddLowRank(DecodeLinear linear, float* x, int inDim, float* y, long yStride, int batch, int topK) =>
            linear.AddLowRank(x, inDim, y, yStride, batch, topK, Experts, Gates);

        public float* X { get; }
        public float* Normed { get; }
        public float* Xz { get; }
        public float* U { get; }
        public float* Parameters { get; }
        public float* DtInput { get; }
        public float* Delta { get; }
        public float* Y { get; }
    }
}
