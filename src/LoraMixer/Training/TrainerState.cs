using System.Text.Json.Serialization;

namespace LoraMixer.Training;

/// <summary>
/// The loop's position and bookkeeping, stored as <c>trainer_state.json</c> in each checkpoint. No RNG
/// state is stored: the trainer seeds torch before every micro-step from (<see cref="Seed"/>, micro-step
/// index), so the position alone fixes every later random number.
/// </summary>
public sealed record TrainerState
{
    /// <summary>Version of this file's layout.</summary>
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;

    /// <summary>Optimizer steps done.</summary>
    [JsonPropertyName("step")] public required int Step { get; init; }

    /// <summary>Epoch (0-based) of the next micro-batch.</summary>
    [JsonPropertyName("epoch")] public required int Epoch { get; init; }

    /// <summary>Index within <see cref="Epoch"/> of the next micro-batch (may equal the epoch's batch count: the epoch is finished).</summary>
    [JsonPropertyName("batch_index")] public required int BatchIndex { get; init; }

    /// <summary>Micro-steps done in total; with <see cref="Seed"/> it seeds the next micro-step's RNG.</summary>
    [JsonPropertyName("micro_index")] public required long MicroIndex { get; init; }

    /// <summary>Optimizer steps the run was planned for.</summary>
    [JsonPropertyName("total_steps")] public required int TotalSteps { get; init; }

    /// <summary>The run's seed.</summary>
    [JsonPropertyName("seed")] public required long Seed { get; init; }

    /// <summary>SHA-256 of <see cref="Trajectory"/>, to detect any change at a glance.</summary>
    [JsonPropertyName("options_hash")] public required string OptionsHash { get; init; }

    /// <summary>Every setting that shapes the trajectory, by name, in invariant text.</summary>
    [JsonPropertyName("trajectory")] public required IReadOnlyDictionary<string, string> Trajectory { get; init; }

    /// <summary>Lowest <c>eval_loss</c> so far, or null.</summary>
    [JsonPropertyName("best_eval_loss")] public double? BestEvalLoss { get; init; }

    /// <summary>Step of <see cref="BestEvalLoss"/>, or null.</summary>
    [JsonPropertyName("best_eval_step")] public int? BestEvalStep { get; init; }

    /// <summary>Lines of <c>train_log.jsonl</c> written up to this checkpoint; a resume truncates the log to them.</summary>
    [JsonPropertyName("log_lines")] public required long LogLines { get; init; }
}
