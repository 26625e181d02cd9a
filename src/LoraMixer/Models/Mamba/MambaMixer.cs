using LoraMixer.Models.Decoding;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Models.Mamba;

/// <summary>
/// The Mamba-1 mixer (HF <c>MambaMixer</c> / <c>FalconMambaMixer</c>): gated input projection,
/// depthwise causal convolution, input-dependent (selective) state-space scan, gated output
/// projection. <c>in_proj</c>, <c>out_proj</c>, <c>x_proj</c> and <c>dt_proj</c> are plain linears that adapter code may replace.
/// </summary>
public sealed class MambaMixer : nn.Module
{
#pragma warning disable IDE1006 // HF names: parameter names equal the safetensors keys
    /// <summary>Input projection [2·d_inner, hidden] to the scan input x and the gate z.</summary>
    public nn.Module<Tensor, Tensor> in_proj;
    /// <summary>Depthwise causal convolution over time: weight [d_inner, 1, k], optional bias [d_inner].</summary>
    public readonly Conv1d conv1d;
    /// <summary>Projection [time_step_rank + 2N, d_inner] to the low-rank Δ and to B and C.</summary>
    public nn.Module<Tensor, Tensor> x_proj;
    /// <summary>Projection [d_inner, time_step_rank] (with bias) of Δ before the softplus.</summary>
    public nn.Module<Tensor, Tensor> dt_proj;
    /// <summary>log(−A) [d_inner, N]; A = −exp(A_log) keeps the dynamics stable.</summary>
    public readonly Parameter A_log;
    /// <summary>Skip connection weight [d_inner].</summary>
    public readonly Parameter D;
    /// <summary>Output projection [hidden, d_inner].</summary>
    public nn.Module<Tensor, Tensor> out_proj;
#pragma warning restore IDE1006

    private readonly int _inner, _kernel, _rank, _state;
    private readonly double? _bcDtEps;

    /// <summary>Creates the mixer of one block with uninitialised weights.</summary>
    public MambaMixer(MambaConfig config) : base(nameof(MambaMixer))
    {
        _inner = config.IntermediateSize;
        _kernel = config.ConvKernel;
        _rank = config.TimeStepRank;
        _state = config.StateSize;
        _bcDtEps = config.NormalizesBcDt ? config.MixerRmsEps : null;
        in_proj = nn.Linear(config.HiddenSize, 2L * _inner, hasBias: config.UseBias);
        conv1d = nn.Conv1d(_inner, _inner, _kernel, padding: _kernel - 1, groups: _inner, bias: config.UseConvBias);
        x_proj = nn.Linear(_inner, _rank + 2L * _state, hasBias: false);
        dt_proj = nn.Linear(_rank, _inner, hasBias: true);
        A_log = nn.Parameter(zeros(_inner, _state));
        D = nn.Parameter(ones(_inner));
        out_proj = nn.Linear(_inner, config.HiddenSize, hasBias: config.UseBias);
        RegisterComponents();
    }

    /// <summary>Scan used for passes of more than one position (decoding steps are always sequential).</summary>
    public SelectiveScanMode ScanMode { get; set; } = SelectiveScanMode.Chunked;

    /// <summary>Longest chunk of the chunked scan; null picks <see cref="SelectiveScan.AutoChunkSize"/>.</summary>
    public int? ChunkSize { get; set; }

    /// <summary>
    /// Whether multi-token passes on the CPU without gradients run <see cref="MambaMixerKernel"/> (the C# convolution,
    /// scan and gate) instead of the TorchSharp operations (<see cref="ScanMode"/>), which stay the reference; the default.
    /// </summary>
    public bool UseKernel { get; set; } = true;

    /// <summary>Passes the kernel has served since load (diagnostics: shows which path ran).</summary>
    public long KernelPasses { get; private set; }

    /// <summary>
    /// u [B, T, hidden] → [B, T, hidden]. <paramref name="mask"/> [B, T] (1 real, 0 padding) zeroes the
    /// padded positions' conv input and scan input, as HF does, so left padding leaves the state at
    /// zero until the first real token. <paramref name="cache"/> supplies and receives this layer's states.
    /// </summary>
    public Tensor Forward(Tensor u, Tensor? mask, MambaCache? cache, int layerIndex)
    {
        using var scope = NewDisposeScope();
        long t = u.shape[1];
        if (UseKernel && t > 1 && KernelForward(u, mask, cache, layerIndex) is { } fast)
        {
            KernelPasses++;
            return fast.MoveToOuterDisposeScope();
        }
        var projected = in_proj.forward(u).transpose(1, 2);                       // [B, 2·d_inner, T]
        var x = projected.narrow(1, 0, _inner);
        var z = projected.narrow(1, _inner, _inner);
        var m = mask?.unsqueeze(1).to_type(u.dtype);                            // [B, 1, T]
        if (m is not null) x = x * m;

        // Causal depthwise convolution over [past k−1 inputs | new inputs]; zeros stand for "no past",
        // which is exactly Conv1d's padding k−1 followed by truncation to T.
        var past = cache?.ConvState(layerIndex) ?? zeros(new[] { x.shape[0], (long)_inner, _kernel - 1L }, device: x.device);
        var window = cat(new[] { past, x }, 2);
        x = nn.functional.silu(nn.functional.conv1d(window, conv1d.weight!, conv1d.bias, groups: _inner));
        if (m is not null) x = x * m;

        var parameters = x_proj.forward(x.transpose(1, 2));                      // [B, T, rank + 2N]
        var dt = parameters.narrow(-1, 0, _rank);
        var b = parameters.narrow(-1, _rank, _state);
        var c = parameters.narrow(-1, _rank + _state, _state);
        if (_bcDtEps is double eps)
        {
            // Falcon-Mamba: weightless RMS norm of B, C and Δ right after x_proj (HF rms_forward).
            b = RmsNormalize(b, eps);
            c = RmsNormalize(c, eps);
            dt = RmsNormalize(dt, eps);
        }
        var delta = nn.functional.softplus(dt_proj.forward(dt)).transpose(1, 2); // [B, d_inner, T]; HF softplus(β=1, threshold=20)
        var a = A_log.exp().neg();
        var state = cache?.SsmState(layerIndex);
        var (y, last) = t == 1 || ScanMode == SelectiveScanMode.Sequential
            ? SelectiveScan.Sequential(x, delta, a, b, c, state)
            : SelectiveScan.Chunked(x, delta, a, b, c, state, ChunkSize);
        cache?.Update(layerIndex, window.narrow(2, window.shape[2] - (_kernel - 1), _kernel - 1), last);

        y = (y + x * D.unsqueeze(-1)) * nn.functional.silu(z);
        return out_proj.forward(y.transpose(1, 2)).MoveToOuterDisposeScope();
    }

    // The same pass through MambaMixerKernel (time-major, no transposes); null when it does not apply.
    private unsafe Tensor? KernelForward(Tensor u, Tensor? mask, MambaCache? cache, int layerIndex)
    {
        if (is_grad_enabled() || u.device_type != DeviceType.CPU || u.dtype != ScalarType.Float32 || u.ndim != 3
            || _inner % MambaMixerKernel.Lanes != 0) return null;
        long batch = u.shape[0], t = u.shape[1];
        var convWeight = conv1d.weight!;
        var weight = convWeight.view(_inner, _kernel).t().contiguous();                                  // [K, D]
        var a = A_log.exp().neg().t().contiguous();                                                     // [N, D]
        var skip = D.contiguous();
        var bias = conv1d.bias?.contiguous();
        Tensor? convState = cache?.ConvState(layerIndex), ssmState = cache?.SsmState(layerIndex);
        // A cache of another batch size: the reference path reports it.
        if (convState is not null && (convState.shape[0] != batch || ssmState!.shape[0] != batch)) return null;
        if (!NativeData.TryFloat(weight, out nint w) || !NativeData.TryFloat(a, out nint aT) || !NativeData.TryFloat(skip, out nint dSkip)
            || (bias is not null && !NativeData.TryFloat(bias, out _)) || (convState is not null && !NativeData.TryFloat(convState, out _))
            || (ssmState is not null && !NativeData.TryFloat(ssmState, out _)))
            return null;
        var m = mask?.to_type(ScalarType.Float32).contiguous();
        if (m is not null && (m.ndim != 2 || m.shape[0] != batch || m.shape[1] != t || !NativeData.TryFloat(m, out _))) return null;
        int workers = Math.Max(1, get_num_threads());

        var projected = in_proj.forward(u).contiguous();                                              // [B, T, 2·d_inner]
        if (!NativeData.TryFloat(projected, out nint xz)) return null;
        var x = empty(new[] { batch, t, (long)_inner });
        float* mp = m is null ? null : (float*)NativeData.Of(m);
        MambaMixerKernel.Convolve((float*)xz, 2L * _inner, mp, convState is null ? null : (float*)NativeData.Of(convState), (float*)w,
            bias is null ? null : (float*)NativeData.Of(bias), (float*)NativeData.Of(x), (int)batch, (int)t, _inner, _kernel, workers);

        var parameters = x_proj.forward(x).contiguous();                                              // [B, T, rank + 2N]
        var dt = parameters.narrow(-1, 0, _rank);
        var b = parameters.narrow(-1, _rank, _state);
        var c = parameters.narrow(-1, _rank + _state, _state);
        long bcStride = _rank + 2L * _state;
        if (_bcDtEps is double eps)
        {
            dt = RmsNormalize(dt, eps);
            b = RmsNormalize(b, eps).contiguous();
            c = RmsNormalize(c, eps).contiguous();
            bcStride = _state;
        }
        var delta = nn.functional.softplus(dt_proj.forward(dt)).contiguous();                         // [B, T, d_inner]
        if (!NativeData.TryFloat(delta, out nint dl) || !NativeData.TryFloat(parameters, out _)) return null;
        var y = empty(new[] { batch, t, (long)_inner });
        MambaMixerKernel.Scan((float*)NativeData.Of(x), (float*)dl, (float*)aT, (float*)NativeData.Of(b), (float*)NativeData.Of(c), bcStride,
            (float*)dSkip, (float*)xz + _inner, 2L * _inner, ssmState is null ? null : (float*)NativeData.Of(ssmState), (float*)NativeData.Of(y),
            (int)batch, (int)t, _inner, _state, workers);
        return out_proj.forward(y);
    }

    private static Tensor RmsNormalize(Tensor v, double eps) =>
        v * rsqrt(v.pow(2).mean(new long[] { -1 }, keepdim: true) + eps);
}
