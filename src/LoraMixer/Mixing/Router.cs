using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// A router <c>W_g</c> [E, features] without bias, zero-initialised so that routing starts uniform; returns
/// logits. With input standardisation it first maps features f to <c>(f − mean) / std</c>, both measured on
/// data (<see cref="SetStandardization"/>) and saved beside the weight.
/// </summary>
public sealed class Router : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // the safetensors key is "...router.weight"
    /// <summary>W_g [experts, features].</summary>
    public readonly Parameter weight;
#pragma warning restore IDE1006

    private Tensor? _mean, _std;

    /// <summary>Creates a zero router for <paramref name="experts"/> experts over <paramref name="inFeatures"/> features.</summary>
    public Router(int experts, long inFeatures, Device device) : base(nameof(Router))
    {
        weight = new Parameter(zeros(experts, inFeatures, device: device), requires_grad: true);
        RegisterComponents();
    }

    /// <summary>Number of experts E.</summary>
    public int Experts => (int)weight.shape[0];

    /// <summary>Number of input features.</summary>
    public long InFeatures => weight.shape[1];

    /// <summary>Feature means [features] of input standardisation, or null when the input is used as it is.</summary>
    public Tensor? InputMean => _mean;

    /// <summary>Feature standard deviations [features] of input standardisation, or null.</summary>
    public Tensor? InputStd => _std;

    /// <summary>Sets (or with nulls clears) the input standardisation; copies the tensors.</summary>
    public void SetStandardization(Tensor? mean, Tensor? std)
    {
        _mean?.Dispose();
        _std?.Dispose();
        _mean = _std = null;
        if (mean is null || std is null) return;
        if (mean.numel() != InFeatures || std.numel() != InFeatures)
            throw new ArgumentException($"router standardisation needs {InFeatures} means and deviations, got {mean.numel()} and {std.numel()}");
        using var noGrad = no_grad();
        _mean = mean.detach().reshape(InFeatures).to(weight.device).clone().DetachFromDisposeScope();
        _std = std.detach().reshape(InFeatures).to(weight.device).clone().DetachFromDisposeScope();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor features)
    {
        if (_mean is null || _std is null) return nn.functional.linear(features, weight);
        using var scope = NewDisposeScope();
        return nn.functional.linear((features - _mean) / _std, weight).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) SetStandardization(null, null);
        base.Dispose(disposing);
    }
}
