using LoraMixer.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Mamba;

/// <summary>Pre-norm residual block: <c>x + mixer(norm(x))</c> (HF <c>MambaBlock</c>).</summary>
public sealed class MambaBlock : nn.Module
{
#pragma warning disable IDE1006
    /// <summary>RMS norm before the mixer.</summary>
    public readonly RmsNorm norm;
    /// <summary>The selective state-space mixer.</summary>
    public readonly MambaMixer mixer;
#pragma warning restore IDE1006

    /// <summary>Creates one block.</summary>
    public MambaBlock(MambaConfig config) : base(nameof(MambaBlock))
    {
        norm = new RmsNorm(config.HiddenSize, config.LayerNormEpsilon);
        mixer = new MambaMixer(config);
        RegisterComponents();
    }

    /// <summary>
    /// Observer of the normalised hidden state that enters the mixer (the router input of the
    /// LoRA-Mixer); null for the plain model.
    /// </summary>
    public Action<BlockInput>? MixerInputObserver { get; set; }

    /// <summary>One block over x [B, T, hidden]; see <see cref="MambaMixer.Forward"/> for the mask and cache.</summary>
    public Tensor Forward(Tensor x, Tensor? mask, MambaCache? cache, int layerIndex)
    {
        using var scope = NewDisposeScope();
        var normed = norm.forward(x);
        MixerInputObserver?.Invoke(new BlockInput(normed, mask, cache));
        // HF keeps the residual in fp32 (residual_in_fp32); everything here is fp32 already.
        return (x + mixer.Forward(normed, mask, cache, layerIndex)).MoveToOuterDisposeScope();
    }
}
