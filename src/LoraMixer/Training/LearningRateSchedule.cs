namespace LoraMixer.Training;

/// <summary>
/// Linear warm-up from 0 to the peak learning rate, then a half cosine down to
/// <c>MinLearningRateRatio · peak</c> at the final step (Hugging Face's
/// <c>get_cosine_schedule_with_warmup</c> with a floor, counted from step 1 so that no step runs at lr 0).
/// </summary>
public sealed class LearningRateSchedule
{
    /// <summary>Creates a schedule; <paramref name="warmupSteps"/>, when given, overrides <paramref name="warmupRatio"/>.</summary>
    public LearningRateSchedule(double peakLearningRate, double warmupRatio = 0.0, int? warmupSteps = null, double minLearningRateRatio = 0.0)
    {
        if (!(peakLearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(peakLearningRate), peakLearningRate, "The peak learning rate must be positive.");
        if (!(warmupRatio >= 0 && warmupRatio <= 1)) throw new ArgumentOutOfRangeException(nameof(warmupRatio), warmupRatio, "The warm-up ratio must be in [0, 1].");
        if (warmupSteps is < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), warmupSteps, "Warm-up steps must be 0 or more.");
        if (!(minLearningRateRatio >= 0 && minLearningRateRatio <= 1)) throw new ArgumentOutOfRangeException(nameof(minLearningRateRatio), minLearningRateRatio, "The minimum ratio must be in [0, 1].");
        PeakLearningRate = peakLearningRate;
        WarmupRatio = warmupRatio;
        FixedWarmupSteps = warmupSteps;
        MinLearningRateRatio = minLearningRateRatio;
    }

    /// <summary>The schedule a <see cref="Trainer"/> with <paramref name="options"/> follows.</summary>
    public static LearningRateSchedule For(TrainerOptions options) =>
        new(options.LearningRate, options.WarmupRatio, options.WarmupSteps, options.MinLearningRateRatio);

    /// <summary>Learning rate at the end of warm-up.</summary>
    public double PeakLearningRate { get; }

    /// <summary>Fraction of the run spent warming up, when <see cref="FixedWarmupSteps"/> is null.</summary>
    public double WarmupRatio { get; }

    /// <summary>Warm-up length in steps, or null to derive it from <see cref="WarmupRatio"/>.</summary>
    public int? FixedWarmupSteps { get; }

    /// <summary>The cosine floor as a fraction of <see cref="PeakLearningRate"/>.</summary>
    public double MinLearningRateRatio { get; }

    /// <summary>Warm-up steps in a run of <paramref name="totalSteps"/>: the fixed count, or ⌈ratio · total⌉ as in Hugging Face.</summary>
    public int WarmupStepsFor(int totalSteps) =>
        FixedWarmupSteps ?? (int)Math.Ceiling(WarmupRatio * totalSteps - 1e-9);

    /// <summary>
    /// Learning rate of optimizer step <paramref name="step"/> (1-based, 1..<paramref name="totalSteps"/>):
    /// <c>peak · step / W</c> while <c>step ≤ W</c>, then
    /// <c>min + (peak − min) · ½ (1 + cos(π (step − W) / (total − W)))</c>, which is <c>min</c> at the last step.
    /// </summary>
    public double At(int step, int totalSteps)
    {
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "A run has at least one step.");
        if (step < 1 || step > totalSteps) throw new ArgumentOutOfRangeException(nameof(step), step, $"Steps are numbered 1..{totalSteps}.");
        int warmup = WarmupStepsFor(totalSteps);
        if (step <= warmup) return PeakLearningRate * step / warmup;
        double min = MinLearningRateRatio * PeakLearningRate;
        double progress = (double)(step - warmup) / (totalSteps - warmup);
        return min + (PeakLearningRate - min) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
