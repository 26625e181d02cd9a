using static TorchSharp.torch;

namespace LoraMixer.Lora;

/// <summary>
/// The LoRA of one linear module: <c>y = W x + Scaling · B (A x)</c> with <see cref="A"/> [r, in] and
/// <see cref="B"/> [out, r] (PEFT's <c>lora_A</c> / <c>lora_B</c>). Owns its tensors: they are detached
/// from any dispose scope on construction and freed by <see cref="Dispose"/>.
/// </summary>
public sealed class LoraWeights : IDisposable
{
    /// <summary>Takes ownership of <paramref name="a"/> [r, in], <paramref name="b"/> [out, r] and the optional <paramref name="bias"/> [out].</summary>
    /// <exception cref="ArgumentException">The shapes do not fit together.</exception>
    public LoraWeights(Tensor a, Tensor b, double scaling, double alpha, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.ndim != 2 || b.ndim != 2)
            throw new ArgumentException($"lora_A and lora_B must be matrices; got A {Shape(a)} and B {Shape(b)}");
        if (a.shape[0] != b.shape[1])
            throw new ArgumentException($"lora_A {Shape(a)} has rank {a.shape[0]} but lora_B {Shape(b)} has rank {b.shape[1]}");
        if (a.shape[0] < 1) throw new ArgumentException("rank must be ≥ 1");
        if (bias is not null && (bias.ndim != 1 || bias.shape[0] != b.shape[0]))
            throw new ArgumentException($"bias {Shape(bias)} does not match lora_B {Shape(b)}; expected [{b.shape[0]}]");
        if (!double.IsFinite(scaling)) throw new ArgumentException($"scaling {scaling} is not finite");
        A = a.DetachFromDisposeScope();
        B = b.DetachFromDisposeScope();
        Bias = bias?.DetachFromDisposeScope();
        Scaling = scaling;
        Alpha = alpha;
    }

    /// <summary><c>lora_A</c> [r, in]: the down projection.</summary>
    public Tensor A { get; }

    /// <summary><c>lora_B</c> [out, r]: the up projection.</summary>
    public Tensor B { get; }

    /// <summary>The scale of the update: alpha / r, or alpha / √r with rsLoRA.</summary>
    public double Scaling { get; }

    /// <summary>The rank r (rows of A).</summary>
    public int Rank => (int)A.shape[0];

    /// <summary>The module's <c>lora_alpha</c>.</summary>
    public double Alpha { get; }

    /// <summary>The module's bias [out], present only when the adapter's <c>bias</c> mode saves biases.</summary>
    public Tensor? Bias { get; }

    /// <summary>Input features of the adapted linear (columns of A).</summary>
    public long InFeatures => A.shape[1];

    /// <summary>Output features of the adapted linear (rows of B).</summary>
    public long OutFeatures => B.shape[0];

    /// <inheritdoc />
    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
        Bias?.Dispose();
    }

    internal static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";
}
