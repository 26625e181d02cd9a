using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Baselines;

/// <summary>
/// One adapted matrix under MoLE (Wu et al., ICLR 2024): frozen LoRA experts E_i(x) = s_i B_i A_i x and a
/// learnable gate over their outputs. Per token the experts' outputs are concatenated and normalised
/// (layer norm without affine parameters), reduced to E logits by the gate <c>e</c> [E, E·out], and turned
/// into weights by a softmax with temperature τ: <c>y = W x + Σ_i softmax(ε/τ)_i E_i(x)</c>.
/// </summary>
public sealed class MoleLinear : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // PEFT-like names
    /// <summary>The frozen base projection.</summary>
    public readonly Linear base_layer;
    /// <summary>Stacked A [E, R, in] (frozen).</summary>
    public readonly Parameter lora_A;
    /// <summary>Stacked B [E, out, R] (frozen).</summary>
    public readonly Parameter lora_B;
    /// <summary>The gate e [E, E·out], zero at the start (uniform weights).</summary>
    public readonly Parameter gate;
#pragma warning restore IDE1006

    private readonly Tensor _scaling;
    private readonly List<Tensor> _recorded = new();

    /// <summary>Wraps <paramref name="baseLayer"/> with copies of the experts <paramref name="a"/> [E, R, in] and <paramref name="b"/> [E, out, R].</summary>
    public MoleLinear(string moduleName, Linear baseLayer, Tensor a, Tensor b, IReadOnlyList<double> scalings, double temperature) : base(nameof(MoleLinear))
    {
        if (!(temperature > 0)) throw new ArgumentException($"MoLE's temperature must be positive, got {temperature}");
        ModuleName = moduleName;
        base_layer = baseLayer;
        foreach (var p in base_layer.parameters()) p.requires_grad = false;
        var device = baseLayer.weight!.device;
        long experts = a.shape[0], outF = b.shape[1];
        if (scalings.Count != experts || b.shape[0] != experts) throw new ArgumentException($"{moduleName}: {experts} experts in A, {b.shape[0]} in B, {scalings.Count} scalings");
        using (no_grad())
        {
            lora_A = new Parameter(a.detach().to(device).clone(), requires_grad: false);
            lora_B = new Parameter(b.detach().to(device).clone(), requires_grad: false);
        }
        gate = new Parameter(zeros(experts, experts * outF, device: device), requires_grad: false);
        _scaling = tensor(scalings.Select(s => (float)s).ToArray(), device: device);
        Temperature = temperature;
        RegisterComponents();
    }

    /// <summary>HF module name, e.g. <c>model.layers.0.self_attn.q_proj</c>.</summary>
    public string ModuleName { get; }

    /// <summary>Number of experts E.</summary>
    public int Experts => (int)lora_A.shape[0];

    /// <summary>Softmax temperature τ of the gate.</summary>
    public double Temperature { get; }

    /// <summary>When true, each forward keeps its gate weights [..., E] (with gradient) for the balance loss.</summary>
    public bool Record { get; set; }

    /// <summary>Hands over the recorded gate weights and forgets them.</summary>
    public IReadOnlyList<Tensor> TakeRecorded()
    {
        var taken = _recorded.ToArray();
        _recorded.Clear();
        return taken;
    }

    /// <summary>The gate weights G [..., E] for input x [..., in], and the experts' outputs [..., E, out].</summary>
    public (Tensor Gates, Tensor Outputs) Gate(Tensor x)
    {
        using var scope = NewDisposeScope();
        long e = lora_A.shape[0], r = lora_A.shape[1], inF = lora_A.shape[2], outF = lora_B.shape[1];
        var lead = x.shape[..^1];
        var u = nn.functional.linear(x, lora_A.reshape(e * r, inF)).reshape(lead.Append(e).Append(r).ToArray());
        var outputs = einsum("...er,eor->...eo", u, lora_B) * _scaling.view(e, 1);                  // E_i(x)
        var flat = outputs.reshape(lead.Append(e * outF).ToArray());
        var normalised = nn.functional.layer_norm(flat, new[] { e * outF });
        var gates = (nn.functional.linear(normalised, gate) / Temperature).softmax(-1);
        return (gates.MoveToOuterDisposeScope(), outputs.MoveToOuterDisposeScope());
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var (gates, outputs) = Gate(x);
        if (Record) _recorded.Add(gates.alias().DetachFromDisposeScope());
        return (base_layer.forward(x) + (gates.unsqueeze(-1) * outputs).sum(dim: -2)).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var t in _recorded) t.Dispose();
            _recorded.Clear();
            _scaling.Dispose();
        }
        base.Dispose(disposing);
    }
}
