using LoraMixer.Lora;
using LoraMixer.Training;

namespace LoraMixer.Mixing;

/// <summary>
/// Stage 1 of the joint paradigm (docs/method.md §5): one expert per task, all with <see cref="Expert"/>'s
/// rank, alpha, dropout and target projections, trained with hard routing under <see cref="Training"/>.
/// </summary>
public sealed record ExpertTraining
{
    /// <summary>The LoRA of every expert (rank, alpha, dropout, targets).</summary>
    public required LoraConfig Expert { get; init; }
    /// <summary>Sequence length, batch size and the optimisation loop (its output folder holds the checkpoints).</summary>
    public required FineTuneSettings Training { get; init; }
}
