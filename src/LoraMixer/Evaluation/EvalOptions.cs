namespace LoraMixer.Evaluation;

/// <summary>How a benchmark is run; the defaults follow lm-evaluation-harness.</summary>
public sealed record EvalOptions
{
    /// <summary>
    /// Evaluate at most this many examples (null: all): the first N in file order as lm-eval's <c>--limit</c>, or a
    /// random N when <see cref="LimitSeed"/> is set.
    /// </summary>
    public int? Limit { get; init; }
    /// <summary>With <see cref="Limit"/>: draw a uniform random subset with this seed instead of taking the first N.</summary>
    public int? LimitSeed { get; init; }
    /// <summary>Number of in-context exemplars; null: the task's lm-eval default (GSM8K 5, the others 0).</summary>
    public int? Shots { get; init; }
    /// <summary>Seed of the few-shot draw and the bootstrap.</summary>
    public int Seed { get; init; } = 1234;
    /// <summary>Sequences per forward pass or generation batch.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Most generated tokens per example (null: 256 for GSM8K, 1024 for HumanEval as in lm-eval).</summary>
    public int? MaxNewTokens { get; init; }
    /// <summary>
    /// Completions per HumanEval problem: 1 is one greedy completion (pass@1); n &gt; 1 samples n completions with
    /// <see cref="SamplingTemperature"/> and <see cref="SamplingTopP"/> and reports the unbiased pass@k for k = 1, 10, 100 up to n.
    /// </summary>
    public int Samples { get; init; } = 1;
    /// <summary>Temperature of the sampled completions when <see cref="Samples"/> &gt; 1 (lm-eval's humaneval_64: 0.2).</summary>
    public double SamplingTemperature { get; init; } = 0.2;
    /// <summary>Nucleus threshold of the sampled completions when <see cref="Samples"/> &gt; 1 (lm-eval's humaneval_64: 0.95).</summary>
    public double SamplingTopP { get; init; } = 0.95;
    /// <summary>Bootstrap resamples of the 95% confidence intervals.</summary>
    public int BootstrapResamples { get; init; } = Bootstrap.DefaultResamples;
    /// <summary>Sandboxing and permission for running generated code (HumanEval); off unless set.</summary>
    public CodeExecutionOptions CodeExecution { get; init; } = new();
    /// <summary>
    /// For a model that routes once per prompt (a sequence-routed LoRA-Mixer: its SetDecisionPositions): told
    /// where each scored context ends, so the decision is taken there (see <see cref="LoglikelihoodScorer"/>).
    /// </summary>
    public Action<TorchSharp.torch.Tensor?>? PromptEnds { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (Limit is < 1) throw new ArgumentException($"limit must be ≥ 1, got {Limit}");
        if (Shots is < 0) throw new ArgumentException($"shots must be ≥ 0, got {Shots}");
        if (BatchSize < 1) throw new ArgumentException($"batch size must be ≥ 1, got {BatchSize}");
        if (MaxNewTokens is < 1) throw new ArgumentException($"max new tokens must be ≥ 1, got {MaxNewTokens}");
        if (Samples < 1) throw new ArgumentException($"samples must be ≥ 1, got {Samples}");
        if (!(SamplingTemperature > 0)) throw new ArgumentException($"sampling temperature must be > 0, got {SamplingTemperature}");
        if (!(SamplingTopP > 0 && SamplingTopP <= 1)) throw new ArgumentException($"sampling top-p must be in (0, 1], got {SamplingTopP}");
        if (BootstrapResamples < 1) throw new ArgumentException($"bootstrap resamples must be ≥ 1, got {BootstrapResamples}");
        CodeExecution.Validate();
    }
}
