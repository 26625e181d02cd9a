using static TorchSharp.torch;

namespace LoraMixer.Models.Llama;

/// <summary>
/// Rotary position embedding in Hugging Face's rotate_half layout (dimension i pairs with i + d/2),
/// with the <c>linear</c> and <c>llama3</c> frequency scalings.
/// </summary>
public sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor _invFreq; // [headDim / 2]

    /// <summary>Precomputes the inverse frequencies.</summary>
    public RotaryEmbedding(int headDim, double theta, RopeScaling? scaling, Device device)
    {
        _invFreq = tensor(InverseFrequencies(headDim, theta, scaling), device: device).DetachFromDisposeScope();
    }

    /// <summary>
    /// inv_freq = 1 / θ^(2i/d), then scaled as HF's <c>_compute_default_rope_parameters</c>,
    /// <c>linear</c> and <c>_compute_llama3_parameters</c> do; computed in double, used in float32.
    /// </summary>
    public static float[] InverseFrequencies(int headDim, double theta, RopeScaling? scaling)
    {
        var inv = new float[headDim / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            // HF computes the exponent in int64 → float32 then the power in float32.
            float exponent = (float)(2 * i) / headDim;
            double f = 1.0 / Math.Pow(theta, exponent);
            inv[i] = (float)f;
        }
        if (scaling is null) return inv;
        if (scaling.Type == "linear")
        {
            for (int i = 0; i < inv.Length; i++) inv[i] = (float)(inv[i] / scaling.Factor);
            return inv;
        }
        // llama3: long wavelengths are slowed by `factor`, short ones kept, a smooth blend between.
        double lowFreqWavelen = scaling.OriginalMaxPositionEmbeddings / scaling.LowFreqFactor;
        double highFreqWavelen = scaling.OriginalMaxPositionEmbeddings / scaling.HighFreqFactor;
        for (int i = 0; i < inv.Length; i++)
        {
            double freq = inv[i];
            double wavelen = 2 * Math.PI / freq;
            if (wavelen > lowFreqWavelen)
            {
                inv[i] = (float)(freq / scaling.Factor);
            }
            else if (wavelen >= highFreqWavelen)
            {
                double smooth = (scaling.OriginalMaxPositionEmbeddings / wavelen - scaling.LowFreqFactor)
                    / (scaling.HighFreqFactor - scaling.LowFreqFactor);
                inv[i] = (float)((1 - smooth) * freq / scaling.Factor + smooth * freq);
            }
        }
        return inv;
    }

    /// <summary>cos and sin for positions [B, T], shaped [B, 1, T, headDim] to broadcast over heads.</summary>
    public (Tensor Cos, Tensor Sin) CosSin(Tensor positionIds)
    {
        using var scope = NewDisposeScope();
        var freqs = positionIds.to_type(ScalarType.Float32).unsqueeze(-1) * _invFreq; // [B, T, d/2]
        var emb = cat(new[] { freqs, freqs }, -1).unsqueeze(1);
        return (emb.cos().MoveToOuterDisposeScope(), emb.sin().MoveToOuterDisposeScope());
    }

    /// <summary>Applies the rotation to q or k shaped [B, heads, T, headDim].</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        long half = x.shape[^1] / 2;
        var x1 = x.narrow(-1, 0, half);
        var x2 = x.narrow(-1, half, half);
        var rotated = cat(new[] { x2.neg(), x1 }, -1);
        return (x * cos + rotated * sin).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public void Dispose() => _invFreq.Dispose();
}
