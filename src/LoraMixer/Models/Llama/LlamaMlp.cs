using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Llama;

/// <summary>SwiGLU feed-forward block: <c>down(silu(gate(x)) · up(x))</c> (HF <c>LlamaMLP</c>).</summary>
public sealed class LlamaMlp : nn.Module<Tensor, Tensor>
{
#pragma warning disable IDE1006
    /// <summary>Gate projection [intermediate, hidden].</summary>
    public nn.Module<Tensor, Tensor> gate_proj;
    /// <summary>Up projection [intermediate, hidden].</summary>
    public nn.Module<Tensor, Tensor> up_proj;
    /// <summary>Down projection [hidden, intermediate].</summary>
    public nn.Module<Tensor, Tensor> down_proj;
#pragma warning restore IDE1006

    /// <summary>Creates the MLP of one decoder layer.</summary>
    public LlamaMlp(LlamaConfig config) : base(nameof(LlamaMlp))
    {
        gate_proj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        up_proj = nn.Linear(config.HiddenSize, config.IntermediateSize, hasBias: false);
        down_proj = nn.Linear(config.IntermediateSize, config.HiddenSize, hasBias: false);
        RegisterComponents();
    }

    /// <inheritdoc />
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var hidden = nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x);
        return down_proj.forward(hidden).MoveToOuterDisposeScope();
    }
}
