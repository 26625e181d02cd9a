using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// A frozen linear mixed with E LoRA experts (docs/method.md §2):
/// <c>y = W x + b + Σ_e g_e(x) · s_e · B_e A_e x</c>. Experts are stacked, A [E, R, in] and B [E, out, R],
/// with R the largest rank; a smaller expert's extra rows are zero, and an expert that lacks this module
/// is all zero, so both contribute exactly nothing there. Dense routing computes all experts in two
/// matmuls; top-k routing computes only the chosen experts of each token.
/// </summary>
public sealed class MixerLinear : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006 // PEFT-like names
    /// <summary>The frozen base projection.</summary>
    public readonly Linear base_layer;
    /// <summary>Stacked A [E, R, in].</summary>
    public readonly Parameter lora_A;
    /// <summary>Stacked B [E, out, R].</summary>
    public readonly Parameter lora_B;
#pragma warning restore IDE1006

    private readonly Tensor _scaling;
    private readonly double _dropout;

    /// <summary>Mixes <paramref name="baseLayer"/> with the experts described by <paramref name="experts"/>.</summary>
    /// <param name="moduleName">HF module name, for messages.</param>
    /// <param name="baseLayer">The linear to adapt; its parameters are frozen.</param>
    /// <param name="experts">Per expert: its rank and scaling here, or null when it does not adapt this module.</param>
    /// <param name="slot">The routing this projection follows (shared by the block in block scope).</param>
    /// <param name="ownsSlot">True in projection scope: this projection routes from its own input.</param>
    /// <param name="dropout">LoRA dropout on the input during training.</param>
    public MixerLinear(string moduleName, Linear baseLayer, IReadOnlyList<(int Rank, double Scaling)?> experts,
        RoutingSlot slot, bool ownsSlot, double dropout = 0.0) : base(nameof(MixerLinear))
    {
        if (experts.Count == 0) throw new ArgumentException("a mixed projection needs at least one expert");
        ModuleName = moduleName;
        base_layer = baseLayer;
        foreach (var p in base_layer.parameters()) p.requires_grad = false;
        var weight = base_layer.weight!;
        long outFeatures = weight.shape[0], inFeatures = weight.shape[1];
        int maxRank = Math.Max(1, experts.Max(e => e?.Rank ?? 0));
        Ranks = experts.Select(e => e?.Rank ?? 0).ToArray();
        Scalings = experts.Select(e => e?.Scaling ?? 0.0).ToArray();
        var device = weight.device;
        lora_A = new Parameter(zeros(experts.Count, maxRank, inFeatures, device: device), requires_grad: false);
        lora_B = new Parameter(zeros(experts.Count, outFeatures, maxRank, device: device), requires_grad: false);
        _scaling = tensor(Scalings.Select(s => (float)s).ToArray(), device: device);
        Slot = slot;
        OwnsSlot = ownsSlot;
        _dropout = dropout;
        RegisterComponents();
        if (ownsSlot) register_module("router", slot.Router);
    }

    /// <summary>HF module name, e.g. <c>model.layers.0.self_attn.q_proj</c>.</summary>
    public string ModuleName { get; }

    /// <summary>Rank of each expert here (0: the expert does not adapt this module).</summary>
    public IReadOnlyList<int> Ranks { get; }

    /// <summary>Scaling s_e of each expert here.</summary>
    public IReadOnlyList<double> Scalings { get; }

    /// <summary>Number of experts E.</summary>
    public int Experts => Ranks.Count;

    /// <summary>The routing this projection follows.</summary>
    public RoutingSlot Slot { get; }

    /// <summary>LoRA dropout on the input, applied only in training mode.</summary>
    internal double Dropout => _dropout;

    /// <summary>True when this projection has its own router (projection scope).</summary>
    public bool OwnsSlot { get; }

    /// <summary>Sets expert <paramref name="expert"/>'s A [r, in] and B [out, r] (r = its rank here).</summary>
    public void SetExpert(int expert, Tensor a, Tensor b)
    {
        int r = Ranks[expert];
        long outF = lora_B.shape[1], inF = lora_A.shape[2];
        if (r == 0) throw new InvalidOperationException($"{ModuleName}: expert {expert} does not adapt this module");
        if (!a.shape.SequenceEqual(new[] { r, inF }) || !b.shape.SequenceEqual(new[] { outF, r }))
            throw new Errors.AdapterMismatchException(
                $"{ModuleName}: expert {expert} has lora_A [{string.Join(", ", a.shape)}] and lora_B [{string.Join(", ", b.shape)}], expected [{r}, {inF}] and [{outF}, {r}] for the base weight [{outF}, {inF}]");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        lora_A[expert].narrow(0, 0, r).copy_(a);
        lora_B[expert].narrow(1, 0, r).copy_(b);
    }

    /// <summary>Expert <paramref name="expert"/>'s A [r, in] and B [out, r] as new tensors (null when absent here).</summary>
    public (Tensor A, Tensor B)? GetExpert(int expert)
    {
        int r = Ranks[expert];
        if (r == 0) return null;
        using var _ = no_grad();
        return (lora_A[expert].narrow(0, 0, r).clone(), lora_B[expert].narrow(1, 0, r).clone());
    }

    /// <summary>PEFT-style fresh experts: A Kaiming-uniform, B zero.</summary>
    public void InitializeExperts()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        for (int e = 0; e < Experts; e++)
        {
            int r = Ranks[e];
            if (r == 0) continue;
            var a = empty(r, lora_A.shape[2], device: lora_A.device);
            nn.init.kaiming_uniform_(a, a: Math.Sqrt(5));
            lora_A[e].narrow(0, 0, r).copy_(a);
            lora_B[e].zero_();
        }
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        if (OwnsSlot) Slot.Route(x);
        var y = base_layer.forward(x);
        var decision = Slot.Current;
        var input = training && _dropout > 0 ? nn.functional.dropout(x, _dropout, training: true) : x;
        var delta = decision.Gates is not null
            ? DenseDelta(input, decision.Gates)
            : SparseDelta(input, decision);
        return (y + delta).MoveToOuterDisposeScope();
    }

    // All experts at once: x [.., in] · A_catᵀ → [.., E·R], weighted per expert, · B_catᵀ → [.., out].
    private Tensor DenseDelta(Tensor x, Tensor gates)
    {
        long e = lora_A.shape[0], r = lora_A.shape[1], inF = lora_A.shape[2], outF = lora_B.shape[1];
        var aCat = lora_A.reshape(e * r, inF);
        var bCat = lora_B.permute(1, 0, 2).reshape(outF, e * r);
        var weights = (gates * _scaling).repeat_interleave(r, dim: -1);
        return nn.functional.linear(nn.functional.linear(x, aCat) * weights, bCat);
    }

    // Only the chosen experts: for a few tokens (decoding) gather their experts and use batched matmuls;
    // for many tokens (prefill) all experts in two matmuls with the unchosen ones weighted zero.
    private Tensor SparseDelta(Tensor x, RoutingDecision decision)
    {
        var indices = decision.TopIndices!;
        var shape = x.shape;
        long inF = shape[^1], outF = lora_B.shape[1];
        var flat = x.reshape(-1, inF);
        long n = flat.shape[0], k = indices.shape[1];
        if (indices.shape[0] != n) throw new InvalidOperationException($"{ModuleName}: routing covers {indices.shape[0]} tokens, input has {n}");
        var outShape = shape.ToArray();
        outShape[^1] = outF;
        if (n * k <= 64)
        {
            var w = decision.TopWeights! * _scaling.index_select(0, indices.reshape(-1)).view(n, k);
            var chosen = indices.reshape(-1);
            var a = lora_A.index_select(0, chosen);                               // [n·k, R, in]
            var b = lora_B.index_select(0, chosen);                               // [n·k, out, R]
            var xs = flat.repeat_interleave(k, dim: 0).unsqueeze(-1);             // [n·k, in, 1]
            var per = b.bmm(a.bmm(xs)).squeeze(-1) * w.reshape(-1, 1);            // [n·k, out]
            return per.view(n, k, outF).sum(1).view(outShape);
        }
        // Many tokens (prefill, scoring): every expert's A x in one matmul, weighted by the sparse gates scattered
        // to [n, E] (zero for experts not chosen; scattered once per decision for all the block's projections) times
        // each expert's scaling, then one matmul with B: no gather, no host synchronisation.
        long e = lora_A.shape[0], r = lora_A.shape[1];
        var gates = decision.ScatteredGates(e) * _scaling;                       // [n, E]
        var aCat = lora_A.reshape(e * r, inF);
        var bCat = lora_B.permute(1, 0, 2).reshape(outF, e * r);
        var weighted = (nn.functional.linear(flat, aCat).view(n, e, r) * gates.unsqueeze(-1)).view(n, e * r);
        var delta = nn.functional.linear(weighted, bCat);
        return delta.view(outShape);
    }
}
