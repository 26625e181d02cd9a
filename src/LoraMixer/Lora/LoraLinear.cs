using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Lora;

/// <summary>
/// A frozen linear with one LoRA adapter (PEFT <c>lora.Linear</c>):
/// <c>y = W x + b + scaling · B (A dropout(x))</c>, A [r, in] Kaiming-uniform, B [out, r] zero at creation.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // PEFT names: base_layer, lora_A, lora_B
    /// <summary>The frozen base projection.</summary>
    public readonly Linear base_layer;
    /// <summary>Down projection A [r, in].</summary>
    public readonly Parameter lora_A;
    /// <summary>Up projection B [out, r].</summary>
    public readonly Parameter lora_B;
#pragma warning restore IDE1006

    private readonly double _dropout;

    /// <summary>Wraps <paramref name="baseLayer"/> with a LoRA of rank <paramref name="rank"/>.</summary>
    /// <param name="baseLayer">The linear to adapt; its parameters are frozen.</param>
    /// <param name="rank">r ≥ 1.</param>
    /// <param name="scaling">lora_alpha / r (or lora_alpha / √r with rsLoRA).</param>
    /// <param name="dropout">Dropout probability on the LoRA input during training.</param>
    public LoraLinear(Linear baseLayer, int rank, double scaling, double dropout = 0.0) : base(nameof(LoraLinear))
    {
        if (rank < 1) throw new ArgumentOutOfRangeException(nameof(rank), rank, "LoRA rank must be at least 1");
        if (dropout is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "dropout must be in [0, 1)");
        base_layer = baseLayer;
        foreach (var p in base_layer.parameters()) p.requires_grad = false;
        var weight = base_layer.weight!;
        long outFeatures = weight.shape[0], inFeatures = weight.shape[1];
        var device = weight.device;
        using (no_grad())
        {
            var a = empty(rank, inFeatures, device: device);
            // PEFT's default init: A like nn.Linear (kaiming_uniform_, a=√5), B zero, so the adapter starts as a no-op.
            nn.init.kaiming_uniform_(a, a: Math.Sqrt(5));
            lora_A = new Parameter(a, requires_grad: true);
            lora_B = new Parameter(zeros(outFeatures, rank, device: device), requires_grad: true);
        }
        Rank = rank;
        Scaling = scaling;
        _dropout = dropout;
        RegisterComponents();
    }

    /// <summary>r.</summary>
    public int Rank { get; }

    /// <summary>The factor applied to B A x.</summary>
    public double Scaling { get; }

    /// <summary>True while B A is folded into the base weight.</summary>
    public bool Merged { get; private set; }

    /// <summary>Replaces A and B by given values (shapes must match).</summary>
    public void SetWeights(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(lora_A.shape) || !b.shape.SequenceEqual(lora_B.shape))
            throw new ArgumentException($"LoRA weights [{string.Join(", ", a.shape)}] / [{string.Join(", ", b.shape)}] do not fit A [{string.Join(", ", lora_A.shape)}] / B [{string.Join(", ", lora_B.shape)}]");
        using var _ = no_grad();
        lora_A.copy_(a);
        lora_B.copy_(b);
    }

    /// <summary>The dense update scaling · B A [out, in].</summary>
    public Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        return (lora_B.matmul(lora_A) * Scaling).MoveToOuterDisposeScope();
    }

    /// <summary>Folds the adapter into the base weight (inference speed of the plain model).</summary>
    public void Merge()
    {
        if (Merged) return;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        base_layer.weight!.add_(DeltaWeight());
        Merged = true;
    }

    /// <summary>Subtracts the adapter from the base weight again.</summary>
    public void Unmerge()
    {
        if (!Merged) return;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        base_layer.weight!.sub_(DeltaWeight());
        Merged = false;
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var y = base_layer.forward(x);
        if (Merged) return y.MoveToOuterDisposeScope();
        var input = training && _dropout > 0 ? nn.functional.dropout(x, _dropout, training: true) : x;
        var delta = nn.functional.linear(nn.functional.linear(input, lora_A), lora_B);
        return (y + delta * Scaling).MoveToOuterDisposeScope();
    }
}
