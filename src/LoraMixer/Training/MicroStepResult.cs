namespace LoraMixer.Training;

/// <summary>
/// What one micro-step reports: its loss before scaling, the tokens (or examples) it consumed, for the
/// throughput figure, and optional extra figures (e.g. a routing loss) that the trainer averages over the
/// step's micro-steps and logs beside the loss.
/// </summary>
/// <param name="Loss">Mean loss of the micro-batch, unscaled.</param>
/// <param name="Tokens">Tokens (or examples) in the micro-batch.</param>
/// <param name="Metrics">Extra named figures, or null.</param>
public sealed record MicroStepResult(double Loss, long Tokens, IReadOnlyDictionary<string, double>? Metrics = null);
