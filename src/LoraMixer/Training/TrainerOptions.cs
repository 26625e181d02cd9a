namespace LoraMixer.Training;

/// <summary>
/// Settings of a <see cref="Trainer"/> run. Defaults are those of a typical LoRA fine-tune (Hugging Face
/// Trainer / PEFT examples): AdamW at 2e-4, 3 % linear warm-up, cosine decay, gradient clipping at 1.
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>Passes over the objective's batches; ignored when <see cref="MaxSteps"/> is set.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Optimizer steps to run, cycling through epochs as needed; overrides <see cref="Epochs"/>.</summary>
    public int? MaxSteps { get; init; }

    /// <summary>Peak learning rate, reached at the end of warm-up.</summary>
    public double LearningRate { get; init; } = 2e-4;

    /// <summary>Decoupled weight decay of AdamW (0 = none).</summary>
    public double WeightDecay { get; init; }

    /// <summary>AdamW β₁ (decay of the first moment).</summary>
    public double Beta1 { get; init; } = 0.9;

    /// <summary>AdamW β₂ (decay of the second moment).</summary>
    public double Beta2 { get; init; } = 0.999;

    /// <summary>AdamW ε, added to √v̂.</summary>
    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Fraction of the total steps spent warming up (rounded up); ignored when <see cref="WarmupSteps"/> is set.</summary>
    public double WarmupRatio { get; init; } = 0.03;

    /// <summary>Warm-up length in steps; overrides <see cref="WarmupRatio"/>.</summary>
    public int? WarmupSteps { get; init; }

    /// <summary>Floor of the cosine decay as a fraction of <see cref="LearningRate"/>, reached at the last step.</summary>
    public double MinLearningRateRatio { get; init; }

    /// <summary>Largest global L2 norm of the gradients; larger ones are scaled down to it (0 = no clipping).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Micro-batches whose gradients are averaged into one optimizer step.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>Evaluate every this many steps (0 = only at the end; the last step is always evaluated).</summary>
    public int EvalEvery { get; init; }

    /// <summary>Save a checkpoint every this many steps (0 = only at the end and on cancellation).</summary>
    public int CheckpointEvery { get; init; } = 50;

    /// <summary>Complete checkpoints kept on disk; older ones are deleted once a newer one is in place.</summary>
    public int KeepCheckpoints { get; init; } = 2;

    /// <summary>Seed of the per-micro-step RNG (dropout); callers use it for their data order too.</summary>
    public long Seed { get; init; }

    /// <summary>Folder for <c>checkpoints/</c> and <c>train_log.jsonl</c>; null = neither is written.</summary>
    public string? OutputDir { get; init; }

    /// <summary>
    /// Caller settings that shape the trajectory but that the trainer cannot see (batch size, data files,
    /// LoRA rank): stored in checkpoints, and a resume with a different value is refused, naming the key.
    /// </summary>
    public IReadOnlyDictionary<string, string>? TrajectorySettings { get; init; }

    /// <summary>
    /// How a refused resume names each setting to the user (e.g. <c>LearningRate</c> → <c>--stage2-lr</c>,
    /// <c>lora_alpha</c> → <c>--alpha</c>); keys are the trainer's own setting names and the keys of
    /// <see cref="TrajectorySettings"/>. Unnamed settings are shown by their key.
    /// </summary>
    public IReadOnlyDictionary<string, string>? SettingNames { get; init; }

    /// <summary>Continue from the latest checkpoint in <see cref="OutputDir"/> (a fresh start when there is none).</summary>
    public bool Resume { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting and its valid range.</summary>
    public void Validate()
    {
        if (Epochs < 1) Fail(nameof(Epochs), Epochs, "must be at least 1");
        if (MaxSteps is < 1) Fail(nameof(MaxSteps), MaxSteps, "must be at least 1 (or unset to train for Epochs)");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) Fail(nameof(LearningRate), LearningRate, "must be a positive number");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) Fail(nameof(WeightDecay), WeightDecay, "must be 0 or more");
        if (!(Beta1 >= 0 && Beta1 < 1)) Fail(nameof(Beta1), Beta1, "must be in [0, 1)");
        if (!(Beta2 >= 0 && Beta2 < 1)) Fail(nameof(Beta2), Beta2, "must be in [0, 1)");
        if (!(Epsilon > 0) || double.IsInfinity(Epsilon)) Fail(nameof(Epsilon), Epsilon, "must be a positive number");
        if (!(WarmupRatio >= 0 && WarmupRatio <= 1)) Fail(nameof(WarmupRatio), WarmupRatio, "must be in [0, 1]");
        if (WarmupSteps is < 0) Fail(nameof(WarmupSteps), WarmupSteps, "must be 0 or more");
        if (!(MinLearningRateRatio >= 0 && MinLearningRateRatio <= 1)) Fail(nameof(MinLearningRateRatio), MinLearningRateRatio, "must be in [0, 1]");
        if (!(MaxGradNorm >= 0) || double.IsInfinity(MaxGradNorm)) Fail(nameof(MaxGradNorm), MaxGradNorm, "must be 0 (off) or a positive number");
        if (GradientAccumulationSteps < 1) Fail(nameof(GradientAccumulationSteps), GradientAccumulationSteps, "must be at least 1");
        if (EvalEvery < 0) Fail(nameof(EvalEvery), EvalEvery, "must be 0 (only at the end) or a positive number of steps");
        if (CheckpointEvery < 0) Fail(nameof(CheckpointEvery), CheckpointEvery, "must be 0 (only at the end) or a positive number of steps");
        if (KeepCheckpoints < 1) Fail(nameof(KeepCheckpoints), KeepCheckpoints, "must be at least 1, so that a run can always be resumed");
        if (OutputDir is not null && string.IsNullOrWhiteSpace(OutputDir)) Fail(nameof(OutputDir), OutputDir, "must be a folder path, or null for no checkpoints and log");
        if (Resume && OutputDir is null) Fail(nameof(Resume), Resume, "needs OutputDir, the folder holding the checkpoints to resume from");
    }

    private static void Fail(string name, object? value, string rule) =>
        throw new ArgumentException($"Training option {name} = {Format(value)} is invalid: it {rule}.", name);

    private static string Format(object? value) => value switch
    {
        null => "null",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        string s => $"'{s}'",
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}
