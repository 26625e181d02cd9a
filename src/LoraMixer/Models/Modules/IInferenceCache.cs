namespace LoraMixer.Models.Modules;

/// <summary>
/// State a model keeps between decoding steps (keys and values for attention; convolution and scan
/// states for state-space models).
/// </summary>
public interface IInferenceCache : IDisposable
{
    /// <summary>Positions processed so far.</summary>
    int Length { get; }

    /// <summary>Per-sequence state of the model's observers (routers), freed with the cache.</summary>
    ObserverState ObserverState { get; }
}
