using LoraMixer.Models;
using LoraMixer.Training;

namespace LoraMixer.Mixing;

/// <summary>
/// The result of stage 2: the base model with its trained mixer attached (set to inference routing), the
/// training summary and the routing statistics on held-out samples. Disposing it frees both.
/// </summary>
public sealed class TrainedMixer(ICausalLM model, LoraMixerModel mixer, TrainingSummary summary, RoutingStatistics statistics) : IDisposable
{
    /// <summary>The base model, with the mixer's projections in place.</summary>
    public ICausalLM Model { get; } = model;
    /// <summary>The mixer.</summary>
    public LoraMixerModel Mixer { get; } = mixer;
    /// <summary>Stage 2's summary; when <see cref="TrainingSummary.Interrupted"/>, nothing was saved.</summary>
    public TrainingSummary Summary { get; } = summary;
    /// <summary>Routing statistics on stage 2's held-out samples.</summary>
    public RoutingStatistics Statistics { get; } = statistics;

    /// <inheritdoc/>
    public void Dispose()
    {
        Mixer.Dispose();
        Model.Dispose();
    }
}
