namespace LoraMixer.Evaluation;

/// <summary>The outcome of evaluating one task.</summary>
/// <param name="Task">lm-eval's task name (arc_easy, arc_challenge, medqa_4options, sst2, cola, gsm8k, humaneval).</param>
/// <param name="Metrics">The task's metrics with their intervals; the first is the headline metric.</param>
/// <param name="N">Examples evaluated.</param>
/// <param name="TemplateId">Which prompt template produced the prompts (changes when the wording does).</param>
/// <param name="Shots">In-context exemplars per prompt.</param>
/// <param name="Seconds">Wall-clock time of the model work (and code execution for HumanEval).</param>
/// <param name="TokensPerSecond">Tokens processed (scoring) or generated (generation) per second.</param>
/// <param name="Samples">Completions per example (HumanEval pass@k with n &gt; 1); 1 for everything else.</param>
/// <param name="TruncatedPrompts">Generation prompts cut from the left to fit the model's window (see <see cref="GenerationPrompt"/>).</param>
public sealed record EvalResult(string Task, IReadOnlyList<MetricValue> Metrics, int N, string TemplateId, int Shots,
    double Seconds, double TokensPerSecond, int Samples = 1, int TruncatedPrompts = 0)
{
    /// <summary>The isolation that ran generated code (HumanEval); null for tasks that run none.</summary>
    public SandboxReport? Sandbox { get; init; }

    /// <summary>The protocol that produced the result: lm-eval's task and version, and LoraMixer's revision of it.</summary>
    public string ProtocolVersion { get; init; } = "";

    /// <summary>Where the exemplars came from ("train", "none (0-shot)", or a split or file named by <c>--fewshot-split</c>).</summary>
    public string ExemplarSplit { get; init; } = "none (0-shot)";

    /// <summary>Which examples were scored ("all 872", "first 200 of 872", "random 200 of 872 (limit seed 1)").</summary>
    public string Subset { get; init; } = "";

    /// <summary>The data files read, with their SHA-256.</summary>
    public IReadOnlyList<DataFileHash> DataFiles { get; init; } = [];

    /// <summary>Deviations and facts a reader needs (e.g. 0-shot because no train split exists), one sentence each.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Malformed data lines skipped while loading (each was reported with file and line).</summary>
    public int SkippedLines { get; init; }

    /// <summary>Per-example outcomes in scoring order (for paired comparisons); empty when not recorded.</summary>
    public IReadOnlyList<ItemOutcome> Items { get; init; } = [];

    /// <summary>The metric called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">The task does not report it.</exception>
    public MetricValue Metric(string name) =>
        Metrics.FirstOrDefault(m => m.Name == name) ?? throw new KeyNotFoundException($"task {Task} has no metric {name}; it has {string.Join(", ", Metrics.Select(m => m.Name))}");
}
