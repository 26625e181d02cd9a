using LoraMixer.Generation;

namespace LoraMixer.Serving;

/// <summary>One sequence to generate: the served model, the prompt's ids, decoding settings and routing choices.</summary>
/// <param name="Model">A served id (<see cref="ServingEngine.Models"/>).</param>
/// <param name="PromptIds">The prompt's token ids (BOS included where the model wants it).</param>
/// <param name="Options">Decoding: max new tokens, temperature, top-p, seed, stop strings.</param>
/// <param name="Routing">The request's routing choices, or null.</param>
/// <param name="ExtraStopIds">Ids that end generation besides the model's EOS (a chat template's end of turn).</param>
public sealed record GenerationRequest(
    string Model,
    IReadOnlyList<int> PromptIds,
    GenerationOptions Options,
    RoutingOverride? Routing = null,
    IReadOnlyList<int>? ExtraStopIds = null);
