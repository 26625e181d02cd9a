namespace LoraMixer.Training;

/// <summary>How a <see cref="Trainer.Run"/> ended.</summary>
public sealed record TrainingSummary
{
    /// <summary>Optimizer steps done in total, including those before a resumption.</summary>
    public required int Steps { get; init; }

    /// <summary>Optimizer steps the run was planned for.</summary>
    public required int TotalSteps { get; init; }

    /// <summary>True when cancellation stopped the run before <see cref="TotalSteps"/>; a checkpoint was saved first.</summary>
    public required bool Interrupted { get; init; }

    /// <summary>The step this run resumed from, or null for a fresh start.</summary>
    public int? ResumedFromStep { get; init; }

    /// <summary>Mean loss of the last step run, or null when none ran.</summary>
    public double? FinalLoss { get; init; }

    /// <summary>The last evaluation's metrics, or null when none ran.</summary>
    public IReadOnlyDictionary<string, double>? FinalEval { get; init; }

    /// <summary>Lowest <c>eval_loss</c> seen in the whole run, or null when the objective reports none.</summary>
    public double? BestEvalLoss { get; init; }

    /// <summary>Step of <see cref="BestEvalLoss"/>.</summary>
    public int? BestEvalStep { get; init; }

    /// <summary>Folder of the newest checkpoint, or null without an output folder.</summary>
    public string? LastCheckpoint { get; init; }

    /// <summary>Wall time of this call.</summary>
    public required TimeSpan Elapsed { get; init; }
}
