using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Modules;

/// <summary>Root-mean-square layer norm (HF <c>LlamaRMSNorm</c>): <c>w · x / sqrt(mean(x²) + eps)</c>.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // HF names make parameter names equal the safetensors keys
    private readonly TorchSharp.Modules.Parameter weight;
#pragma warning restore IDE1006
    private readonly double _eps;

    /// <summary>Creates the norm with weight 1.</summary>
    public RmsNorm(long dim, double eps) : base(nameof(RmsNorm))
    {
        weight = nn.Parameter(ones(dim));
        _eps = eps;
        RegisterComponents();
    }

    /// <summary>The learned scale.</summary>
    public TorchSharp.Modules.Parameter Weight => weight;

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // HF computes the statistics in float32 and casts back; we run in float32 throughout.
        var variance = x.pow(2).mean(new long[] { -1 }, keepdim: true);
        return (weight * (x * rsqrt(variance + _eps))).MoveToOuterDisposeScope();
    }
}
