namespace LoraMixer.Training;

/// <summary>One optimizer step's figures, reported to the caller (e.g. the CLI's progress bar) after the step.</summary>
public sealed record TrainingProgress
{
    /// <summary>Optimizer steps done (1-based).</summary>
    public required int Step { get; init; }

    /// <summary>Optimizer steps in the whole run.</summary>
    public required int TotalSteps { get; init; }

    /// <summary>Epochs done, with the fraction of the current one (Hugging Face style: 1.5 = halfway through the second).</summary>
    public required double Epoch { get; init; }

    /// <summary>Mean loss over the step's micro-steps.</summary>
    public required double Loss { get; init; }

    /// <summary>Learning rate the step used.</summary>
    public required double LearningRate { get; init; }

    /// <summary>Global gradient L2 norm before clipping.</summary>
    public required double GradNorm { get; init; }

    /// <summary>Tokens per second of the step's training work.</summary>
    public required double TokensPerSecond { get; init; }

    /// <summary>Time since this run (or resumption) started.</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>Estimated time to the last step, from this run's mean step time.</summary>
    public required TimeSpan Eta { get; init; }

    /// <summary>The objective's extra figures, averaged over the step's micro-steps.</summary>
    public IReadOnlyDictionary<string, double> Metrics { get; init; } = new Dictionary<string, double>();

    /// <summary>Evaluation results when the step was evaluated, else null.</summary>
    public IReadOnlyDictionary<string, double>? Eval { get; init; }

    /// <summary>Folder of the checkpoint saved after this step, else null.</summary>
    public string? Checkpoint { get; init; }
}
