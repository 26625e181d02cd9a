using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// A router <c>W_g</c> [E, in] without bias, zero-initialised so that routing starts uniform; returns logits.
/// </summary>
public sealed class Router : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // the safetensors key is "...router.weight"
    /// <summary>W_g [experts, in_features].</summary>
    public readonly Parameter weight;
#pragma warning restore IDE1006

    /// <summary>Creates a zero router for <paramref name="experts"/> experts over <paramref name="inFeatures"/> inputs.</summary>
    public Router(int experts, long inFeatures, Device device) : base(nameof(Router))
    {
        weight = new Parameter(zeros(experts, inFeatures, device: device), requires_grad: true);
        RegisterComponents();
    }

    /// <summary>Number of experts E.</summary>
    public int Experts => (int)weight.shape[0];

    /// <inheritdoc />
    public override Tensor forward(Tensor h) => nn.functional.linear(h, weight);
}
