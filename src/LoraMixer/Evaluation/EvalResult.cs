namespace LoraMixer.Evaluation;

/// <summary>The outcome of evaluating one task.</summary>
/// <param name="Task">lm-eval's task name (arc_easy, arc_challenge, medqa_4options, sst2, cola, gsm8k, humaneval).</param>
/// <param name="Metrics">The task's metrics with their intervals; the first is the headline metric.</param>
/// <param name="N">Examples evaluated.</param>
/// <param name="TemplateId">Which prompt template produced the prompts (changes when the wording does).</param>
/// <param name="Shots">In-context exemplars per prompt.</param>
/// <param name="Seconds">Wall-clock time of the model work (and code execution for HumanEval).</param>
/// <param name="TokensPerSecond">Tokens processed (scoring) or generated (generation) per second.</param>
public sealed record EvalResult(string Task, IReadOnlyList<MetricValue> Metrics, int N, string TemplateId, int Shots,
    double Seconds, double TokensPerSecond)
{
    /// <summary>The metric called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">The task does not report it.</exception>
    public MetricValue Metric(string name) =>
        Metrics.FirstOrDefault(m => m.Name == name) ?? throw new KeyNotFoundException($"task {Task} has no metric {name}; it has {string.Join(", ", Metrics.Select(m => m.Name))}");
}
