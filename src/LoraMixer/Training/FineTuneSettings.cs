namespace LoraMixer.Training;

/// <summary>Data and loop settings shared by LoRA training, mixer stages and pretraining.</summary>
public sealed record FineTuneSettings
{
    /// <summary>Longest sequence in tokens; longer examples are truncated (keeping the beginning).</summary>
    public int MaxLength { get; init; } = 512;
    /// <summary>Examples per micro-batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Share of the data held out for evaluation (0 = none).</summary>
    public double EvalFraction { get; init; } = 0.05;
    /// <summary>Upper bound on held-out examples, so evaluation stays cheap.</summary>
    public int MaxEvalExamples { get; init; } = 256;
    /// <summary>The optimisation loop: epochs/steps, learning rate, schedule, checkpoints, seed, resume.</summary>
    public TrainerOptions Trainer { get; init; } = new();

    /// <summary>Checks the settings.</summary>
    public void Validate()
    {
        if (MaxLength < 2) throw new ArgumentException($"--max-length must be at least 2, got {MaxLength}");
        if (BatchSize < 1) throw new ArgumentException($"--batch-size must be at least 1, got {BatchSize}");
        if (EvalFraction is < 0 or >= 1) throw new ArgumentException($"eval fraction must be in [0, 1), got {EvalFraction}");
        Trainer.Validate();
    }
}
