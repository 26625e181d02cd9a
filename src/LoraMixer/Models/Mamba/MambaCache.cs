using LoraMixer.Models.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Models.Mamba;

/// <summary>
/// Recurrent state of every Mamba layer for a batch of sequences: the last k−1 convolution inputs
/// [B, d_inner, k−1] and the scan state [B, d_inner, N]. Its size does not grow with the sequence,
/// so decoding costs the same per token at any length.
/// </summary>
public sealed class MambaCache : IInferenceCache
{
    private readonly Tensor[] _conv;
    private readonly Tensor[] _ssm;

    /// <summary>Allocates zero states for <paramref name="layers"/> layers.</summary>
    public MambaCache(int layers, long batch, int intermediateSize, int convKernel, int stateSize, Device device)
    {
        _conv = new Tensor[layers];
        _ssm = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            _conv[i] = zeros(new[] { batch, intermediateSize, convKernel - 1L }, device: device).DetachFromDisposeScope();
            _ssm[i] = zeros(new[] { batch, intermediateSize, (long)stateSize }, device: device).DetachFromDisposeScope();
        }
    }

    /// <inheritdoc />
    public ObserverState ObserverState { get; } = new();

    /// <summary>Positions processed so far.</summary>
    public int Length { get; private set; }

    /// <summary>The convolution inputs of the last k−1 positions of <paramref name="layer"/> [B, d_inner, k−1] (zeros before any).</summary>
    public Tensor ConvState(int layer) => _conv[layer];

    /// <summary>The scan state of <paramref name="layer"/> [B, d_inner, N].</summary>
    public Tensor SsmState(int layer) => _ssm[layer];

    /// <summary>Overwrites the states of <paramref name="layer"/> (called once per forward pass per layer).</summary>
    public void Update(int layer, Tensor convState, Tensor ssmState)
    {
        _conv[layer].copy_(convState);
        _ssm[layer].copy_(ssmState);
    }

    /// <summary>Marks <paramref name="positions"/> new positions as processed (called once per forward pass).</summary>
    public void Advance(int positions) => Length += positions;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _conv) t.Dispose();
        foreach (var t in _ssm) t.Dispose();
        ObserverState.Dispose();
    }
}
