using LoraMixer.Mixing;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Baselines;

/// <summary>
/// One projection of a MixLoRA feed-forward block with E LoRA experts (A [E, r, in], B [E, out, r], scaling s),
/// following the top-k decision of the block's router. It computes each chosen expert's own projection, so that
/// the block computes <c>Σ_j g_j FFN_{e_j}(x)</c> with every expert a whole LoRA-adapted FFN:
/// <list type="bullet">
/// <item>gate_proj and up_proj (<see cref="Combines"/> false) map x [.., in] to the k chosen experts' outputs
/// [.., k·out], slot j being <c>W x + s B_{e_j} A_{e_j} x</c>; the FFN's <c>silu(gate) · up</c> then acts on
/// each slot separately, giving each chosen expert's hidden state h_j;</item>
/// <item>down_proj (<see cref="Combines"/> true) maps [.., k·in] to <c>Σ_j g_j (W h_j + s B_{e_j} A_{e_j} h_j)</c> [.., out].</item>
/// </list>
/// The base projections run once per token (W Σ_j g_j h_j for down_proj, by linearity), as MixLoRA's
/// optimised forward shares them.
/// </summary>
public sealed class MixLoraLinear : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // PEFT-like names
    /// <summary>The frozen base projection.</summary>
    public readonly Linear base_layer;
    /// <summary>Stacked A [E, r, in].</summary>
    public readonly Parameter lora_A;
    /// <summary>Stacked B [E, out, r].</summary>
    public readonly Parameter lora_B;
#pragma warning restore IDE1006

    private readonly RoutingSlot _slot;

    /// <summary>Adapts <paramref name="baseLayer"/> with <paramref name="experts"/> fresh experts (A uniform ±1/√in, B zero).</summary>
    public MixLoraLinear(string moduleName, Linear baseLayer, int experts, int rank, double scaling, RoutingSlot slot, bool combines, Generator generator)
        : base(nameof(MixLoraLinear))
    {
        ModuleName = moduleName;
        base_layer = baseLayer;
        foreach (var p in base_layer.parameters()) p.requires_grad = false;
        var weight = base_layer.weight!;
        long outF = weight.shape[0], inF = weight.shape[1];
        Tensor a;
        using (NewDisposeScope())
        using (no_grad())
        {
            // PEFT's Kaiming-uniform (a = √5) bound is 1/√in.
            a = ((rand(new long[] { experts, rank, inF }, generator: generator) * 2 - 1) / Math.Sqrt(inF)).to(weight.device).DetachFromDisposeScope();
        }
        lora_A = new Parameter(a, requires_grad: false);
        lora_B = new Parameter(zeros(experts, outF, rank, device: weight.device), requires_grad: false);
        Scaling = scaling;
        Combines = combines;
        _slot = slot;
        RegisterComponents();
    }

    /// <summary>HF module name, e.g. <c>model.layers.0.mlp.gate_proj</c>.</summary>
    public string ModuleName { get; }

    /// <summary>LoRA scaling s = alpha / r.</summary>
    public double Scaling { get; }

    /// <summary>True for down_proj: reads the k experts' hidden states and returns their weighted sum.</summary>
    public bool Combines { get; }

    /// <summary>Number of experts E.</summary>
    public int Experts => (int)lora_A.shape[0];

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var decision = _slot.Current;
        var indices = decision.TopIndices ?? throw new InvalidOperationException($"{ModuleName}: MixLoRA routes top-k");
        var weights = decision.TopWeights!;
        long n = indices.shape[0], k = indices.shape[1];
        long outF = lora_B.shape[1];
        var lead = x.shape[..^1];
        var outShape = lead.Append(Combines ? outF : k * outF).ToArray();
        Tensor result;
        if (Combines)
        {
            long inF = x.shape[^1] / k;
            var weighted = x.reshape(n, k, inF) * weights.unsqueeze(-1);                 // g_j h_j
            var delta = ExpertDeltas(weighted.reshape(n * k, inF), indices, n, outF, perToken: true);
            result = base_layer.forward(weighted.sum(dim: 1)) + delta;
        }
        else
        {
            var flat = x.reshape(n, x.shape[^1]);
            var delta = ExpertDeltas(flat, indices, n, outF, perToken: false);             // [n·k, out]
            result = base_layer.forward(flat).unsqueeze(1) + delta.view(n, k, outF);
        }
        return result.reshape(outShape).MoveToOuterDisposeScope();
    }

    // Σ over the chosen (token, slot) pairs of each expert: s B_e A_e input, for every expert at once (a handful of
    // dense products instead of a gather, two products and a scatter per expert, and no host synchronisation).
    // Every expert's A multiplies every input row ([rows, E·r]); a one-hot mask of the chosen experts keeps each
    // slot's own expert's r values and zeroes the others, so one product with B stacked [out, E·r] applies each
    // slot's own B_e. perToken: input rows are the n·k slots and the output is summed per token [n, out];
    // otherwise input rows are the n tokens and the output has one row per slot [n·k, out].
    private Tensor ExpertDeltas(Tensor input, Tensor indices, long n, long outF, bool perToken)
    {
        long k = indices.shape[1], experts = Experts, rank = lora_A.shape[1];
        var down = nn.functional.linear(input, lora_A.reshape(experts * rank, input.shape[^1]));            // [rows, E·r]
        var chosen = nn.functional.one_hot(indices, experts).to(input.dtype).unsqueeze(-1);              // [n, k, E, 1]
        var masked = perToken
            ? (down.view(n, k, experts, rank) * chosen).sum(dim: 1)                                       // [n, E, r]
            : down.view(n, 1, experts, rank) * chosen;                                                    // [n, k, E, r]
        var stackedB = lora_B.permute(1, 0, 2).reshape(outF, experts * rank);                             // [out, E·r]
        return nn.functional.linear(masked.reshape(-1, experts * rank), stackedB) * Scaling;
    }
}
