using LoraMixer.Mixing;

namespace LoraMixer.Experiments;

/// <summary>Everything the demo measured: the comparison table, routing statistics of both mixers, and where files went.</summary>
public sealed record DemoResult(
    IReadOnlyList<string> Tasks,
    IReadOnlyList<DemoMethodResult> Methods,
    IReadOnlyDictionary<string, RoutingStatistics> Routing,
    IReadOnlyDictionary<string, string> TrainingLogs,
    string OutputDir,
    TimeSpan Elapsed,
    string Architecture = "LlamaForCausalLM");
