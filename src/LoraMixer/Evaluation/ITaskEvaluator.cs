using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>One benchmark's protocol: prompts, scoring and metrics over examples it already holds.</summary>
public interface ITaskEvaluator
{
    /// <summary>lm-eval's task name.</summary>
    string Task { get; }

    /// <summary>Number of examples available (before <see cref="EvalOptions.Limit"/>).</summary>
    int Count { get; }

    /// <summary>Exemplars per prompt when <see cref="EvalOptions.Shots"/> is null (lm-eval's <c>num_fewshot</c>).</summary>
    int DefaultShots => 0;

    /// <summary>Evaluates <paramref name="model"/>; <paramref name="progress"/> hears (examples or requests done, total).</summary>
    EvalResult Evaluate(ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default);
}
