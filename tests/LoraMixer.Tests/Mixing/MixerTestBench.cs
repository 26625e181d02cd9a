using LoraMixer.Lora;
using LoraMixer.Mixing;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// One base linear with E random LoRA experts, both as a <see cref="MixerLinear"/> and as E independent
/// <see cref="LoraLinear"/>s over copies of the same base (the reference).
/// </summary>
internal sealed class MixerTestBench
{
    public const int In = 6, Out = 5;
    public readonly MixerLinear Mixer;
    public readonly RoutingSlot Slot;
    public readonly LoraLinear[] Experts;
    public readonly Tensor BaseWeight, BaseBias;

    public MixerTestBench(long seed, int[] ranks, double[] scalings, RoutingSettings settings)
    {
        // A private generator: other tests may reseed torch's global RNG concurrently.
        var g = new Generator((ulong)seed);
        BaseWeight = randn(Out, In, generator: g);
        BaseBias = randn(Out, generator: g);
        Experts = new LoraLinear[ranks.Length];
        for (int e = 0; e < ranks.Length; e++)
        {
            Experts[e] = new LoraLinear(NewBase(), ranks[e], scalings[e]);
            Experts[e].SetWeights(randn(ranks[e], In, generator: g), randn(Out, ranks[e], generator: g));
        }
        Slot = new RoutingSlot("router", 0, new Router(ranks.Length, In, CPU), settings);
        var layout = ranks.Select((r, e) => ((int, double)?)(r, scalings[e])).ToArray();
        Mixer = new MixerLinear("test.q_proj", NewBase(), layout, Slot, ownsSlot: true);
        for (int e = 0; e < ranks.Length; e++)
            Mixer.SetExpert(e, Experts[e].lora_A.detach(), Experts[e].lora_B.detach());
    }

    public TorchSharp.Modules.Linear NewBase()
    {
        var linear = nn.Linear(In, Out, hasBias: true);
        using var _ = no_grad();
        linear.weight!.copy_(BaseWeight);
        linear.bias!.copy_(BaseBias);
        return linear;
    }

    public void SetRouter(Tensor weight)
    {
        using var _ = no_grad();
        Slot.Router.weight.copy_(weight);
    }

    public Tensor Base(Tensor x) => nn.functional.linear(x, BaseWeight, BaseBias);

    /// <summary>Expert e's own adapter output minus the base: s_e B_e A_e x.</summary>
    public Tensor Delta(int e, Tensor x) => Experts[e].forward(x) - Base(x);

    /// <summary>Reference: base + Σ_e gates[..., e] · delta_e, gates given per token.</summary>
    public Tensor Reference(Tensor x, Tensor gates)
    {
        var y = Base(x);
        for (int e = 0; e < Experts.Length; e++)
            y = y + gates.select(-1, e).unsqueeze(-1) * Delta(e, x);
        return y;
    }
}
