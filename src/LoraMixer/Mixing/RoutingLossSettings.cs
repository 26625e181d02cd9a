namespace LoraMixer.Mixing;

/// <summary>
/// Weights of the router losses of stage 2 (docs/method.md §5): the Routing Specialization Loss (balance
/// weight α, entropy weight λ with its sign and linear warm-up), the optional expert-preservation weight β,
/// and the router supervision weight (cross-entropy towards each sample's task expert; 0 = off).
/// </summary>
public sealed record RoutingLossSettings(
    double Alpha = 0.01,
    double Lambda = 0.01,
    int EntropySign = 1,
    double WarmupRatio = 0.1,
    double Beta = 0.0,
    double Supervision = 0.0)
{
    /// <summary>No RSL at all (ablation).</summary>
    public static RoutingLossSettings None { get; } = new(0, 0, 1, 0, 0, 0);

    /// <summary>Checks the settings.</summary>
    public void Validate()
    {
        if (EntropySign is not (1 or -1)) throw new ArgumentException($"entropy_sign must be +1 or -1, got {EntropySign}");
        if (Alpha < 0 || Lambda < 0 || Beta < 0 || Supervision < 0) throw new ArgumentException("RSL weights α, λ, β and the router supervision weight must be ≥ 0");
        if (WarmupRatio is < 0 or > 1) throw new ArgumentException($"RSL warm-up ratio must be in [0, 1], got {WarmupRatio}");
    }

    /// <summary>λ at <paramref name="step"/> of <paramref name="totalSteps"/>: a linear ramp from 0 over the warm-up.</summary>
    public double LambdaAt(int step, int totalSteps)
    {
        double warmup = WarmupRatio * totalSteps;
        return warmup <= 0 ? Lambda : Lambda * Math.Min(1.0, step / warmup);
    }
}
