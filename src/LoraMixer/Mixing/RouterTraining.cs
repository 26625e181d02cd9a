using LoraMixer.Training;

namespace LoraMixer.Mixing;

/// <summary>
/// Stage 2 (docs/method.md §4–§6): the router design (<see cref="Preset"/>: input, normalisation, granularity,
/// stage-2 routing), the mixer's inference routing (top-k, temperature, router scope), the Routing
/// Specialization Loss with supervision and preservation (<see cref="Loss"/>), and the optimisation loop.
/// </summary>
public sealed record RouterTraining
{
    /// <summary>Router design and stage-2 routing mode.</summary>
    public required RouterPreset Preset { get; init; }
    /// <summary>RSL weights, router supervision and the preservation weight β (β &gt; 0: joint only, experts train too).</summary>
    public required RoutingLossSettings Loss { get; init; }
    /// <summary>Sequence length, batch size and the optimisation loop (its output folder holds the checkpoints).</summary>
    public required FineTuneSettings Training { get; init; }
    /// <summary>Experts per token at inference and in straight-through training.</summary>
    public int TopK { get; init; } = RoutingSettings.DefaultTopK;
    /// <summary>Router softmax temperature τ.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>One router per block (serial attention routing) or one per projection.</summary>
    public RouterScope Scope { get; init; } = RouterScope.Block;

    /// <summary>The routing of stage-2 training.</summary>
    public RoutingSettings Routing => new(Preset.Stage2Routing, TopK, Renormalize: true, Temperature);

    /// <summary>The top-k routing the trained mixer uses at inference.</summary>
    public RoutingSettings Inference => new(RoutingMode.TopK, TopK, Renormalize: true, Temperature);

    /// <summary>Checks k, τ and the losses against <paramref name="experts"/> experts before any work starts.</summary>
    public void Validate(int experts)
    {
        Routing.Validate(experts);
        Inference.Validate(experts);
        Loss.Validate();
        Training.Validate();
    }
}
