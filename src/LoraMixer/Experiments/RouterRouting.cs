namespace LoraMixer.Experiments;

/// <summary>One router's statistics from <c>RoutingStatistics.ToJson()</c>.</summary>
/// <param name="Name">The router, e.g. <c>model.layers.0.router</c>.</param>
/// <param name="Tokens">Tokens counted.</param>
/// <param name="Load">Share of top-1 choices per expert.</param>
/// <param name="MeanEntropy">Mean token routing entropy (nats).</param>
/// <param name="TaskExpert">Task × expert top-1 shares, rows in <see cref="RoutingSummary.Tasks"/> order (NaN where absent).</param>
public sealed record RouterRouting(string Name, double Tokens, double[] Load, double MeanEntropy, double[,] TaskExpert);
