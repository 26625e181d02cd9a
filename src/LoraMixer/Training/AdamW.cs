using LoraMixer.Errors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Training;

/// <summary>
/// Adam with decoupled weight decay (Loshchilov &amp; Hutter 2019), step for step what
/// <c>torch.optim.AdamW</c> (single-tensor path, no amsgrad) computes: for each parameter with a gradient,
/// <c>p ← p·(1 − lr·wd)</c>; <c>m ← β₁m + (1−β₁)g</c>; <c>v ← β₂v + (1−β₂)g²</c>;
/// <c>p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)</c>. A parameter without a gradient is skipped
/// entirely, as torch does, so each keeps its own step count t.
/// </summary>
public sealed class AdamW : IDisposable
{
    private readonly IReadOnlyList<KeyValuePair<string, Parameter>> _parameters;
    private readonly Tensor[] _expAvg;
    private readonly Tensor[] _expAvgSq;
    private readonly long[] _steps;

    /// <summary>Creates zeroed state for each named parameter.</summary>
    public AdamW(IReadOnlyList<KeyValuePair<string, Parameter>> parameters,
        double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0.0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, parameter) in parameters)
        {
            if (parameter is null) throw new ArgumentException($"Parameter '{name}' is null.", nameof(parameters));
            if (!names.Add(name)) throw new ArgumentException($"Parameter name '{name}' appears twice.", nameof(parameters));
        }
        _parameters = parameters.ToArray();
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
        using var noGrad = no_grad();
        _expAvg = _parameters.Select(p => zeros_like(p.Value).DetachFromDisposeScope()).ToArray();
        _expAvgSq = _parameters.Select(p => zeros_like(p.Value).DetachFromDisposeScope()).ToArray();
        _steps = new long[_parameters.Count];
    }

    /// <summary>Decay of the first moment.</summary>
    public double Beta1 { get; }

    /// <summary>Decay of the second moment.</summary>
    public double Beta2 { get; }

    /// <summary>Added to the bias-corrected √v.</summary>
    public double Epsilon { get; }

    /// <summary>Decoupled weight decay coefficient.</summary>
    public double WeightDecay { get; }

    /// <summary>The optimized parameters, by name.</summary>
    public IReadOnlyList<KeyValuePair<string, Parameter>> Parameters => _parameters;

    /// <summary>Updates each parameter that has a gradient, with learning rate <paramref name="learningRate"/>.</summary>
    public void Step(double learningRate)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        for (int i = 0; i < _parameters.Count; i++)
        {
            Tensor parameter = _parameters[i].Value;
            Tensor? grad = parameter.grad;
            if (grad is null) continue;
            long t = ++_steps[i];
            // The order and form of these operations follow torch 1.13's _single_tensor_adamw, so results
            // agree to the last bit or two.
            parameter.mul_(1 - learningRate * WeightDecay);
            _expAvg[i].mul_(Beta1).add_(grad, alpha: 1 - Beta1);
            _expAvgSq[i].mul_(Beta2).addcmul_(grad, grad, value: 1 - Beta2);
            double biasCorrection1 = 1 - Math.Pow(Beta1, t);
            double biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(Beta2, t));
            Tensor denom = (_expAvgSq[i].sqrt() / biasCorrection2Sqrt).add_(Epsilon);
            parameter.addcdiv_(_expAvg[i], denom, value: -learningRate / biasCorrection1);
        }
    }

    /// <summary>Drops every parameter's gradient (set to none, like <c>zero_grad()</c> in torch 2).</summary>
    public void ZeroGrad()
    {
        using var scope = NewDisposeScope();
        foreach (var (_, parameter) in _parameters)
            if (parameter.grad is not null) parameter.grad = null;
    }

    /// <summary>Step count t of each parameter, by name.</summary>
    public IReadOnlyDictionary<string, long> StepCounts =>
        _parameters.Select((p, i) => KeyValuePair.Create(p.Key, _steps[i])).ToDictionary(StringComparer.Ordinal);

    /// <summary>
    /// The state as named tensors, as torch names it: <c>&lt;param&gt;.exp_avg</c>, <c>&lt;param&gt;.exp_avg_sq</c>
    /// (float32, parameter shape) and <c>&lt;param&gt;.step</c> (int64 scalar). The tensors are copies on the CPU,
    /// owned by the caller's dispose scope.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> ExportState()
    {
        var state = new List<KeyValuePair<string, Tensor>>(3 * _parameters.Count);
        for (int i = 0; i < _parameters.Count; i++)
        {
            string name = _parameters[i].Key;
            state.Add(KeyValuePair.Create(name + ".exp_avg", _expAvg[i].detach().cpu().clone()));
            state.Add(KeyValuePair.Create(name + ".exp_avg_sq", _expAvgSq[i].detach().cpu().clone()));
            state.Add(KeyValuePair.Create(name + ".step", tensor(_steps[i], int64)));
        }
        return state;
    }

    /// <summary>
    /// Restores what <see cref="ExportState"/> produced; <paramref name="read"/> returns the tensor of a
    /// name, or null when it is missing. Throws <see cref="ModelFormatException"/> naming
    /// <paramref name="source"/> and the tensor when one is missing or has the wrong shape.
    /// </summary>
    public void ImportState(Func<string, Tensor?> read, string source)
    {
        ArgumentNullException.ThrowIfNull(read);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var moments = new (Tensor ExpAvg, Tensor ExpAvgSq, long Step)[_parameters.Count];
        for (int i = 0; i < _parameters.Count; i++)
        {
            string name = _parameters[i].Key;
            Tensor expAvg = Required(read, source, name + ".exp_avg", _expAvg[i].shape);
            Tensor expAvgSq = Required(read, source, name + ".exp_avg_sq", _expAvgSq[i].shape);
            Tensor step = Required(read, source, name + ".step", []);
            long t = step.to(int64).item<long>();
            if (t < 0) throw new ModelFormatException($"Optimizer state {source}: '{name}.step' is {t}; a step count cannot be negative. The checkpoint is corrupt; resume from an older one.");
            moments[i] = (expAvg, expAvgSq, t);
        }
        // Validated everything first, so a bad file leaves the optimizer untouched.
        for (int i = 0; i < _parameters.Count; i++)
        {
            _expAvg[i].copy_(moments[i].ExpAvg);
            _expAvgSq[i].copy_(moments[i].ExpAvgSq);
            _steps[i] = moments[i].Step;
        }
    }

    private static Tensor Required(Func<string, Tensor?> read, string source, string name, long[] shape)
    {
        Tensor found = read(name) ?? throw new ModelFormatException(
            $"Optimizer state {source} has no tensor '{name}'; the checkpoint is incomplete or from another model. Resume from another checkpoint, or start afresh.");
        if (!found.shape.SequenceEqual(shape))
            throw new ModelFormatException(
                $"Optimizer state {source}: '{name}' has shape [{string.Join(", ", found.shape)}], expected [{string.Join(", ", shape)}]; the checkpoint is from another model or adapter configuration.");
        return found;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (Tensor t in _expAvg) t.Dispose();
        foreach (Tensor t in _expAvgSq) t.Dispose();
    }
}
