namespace LoraMixer.Evaluation;

/// <summary>The benchmarks of the paper that LoraMixer evaluates.</summary>
public enum EvalTask
{
    /// <summary>GSM8K grade-school maths as lm-eval's <c>gsm8k</c> v3: 5-shot "Question:/Answer:", greedy, exact match.</summary>
    Gsm8k,
    /// <summary>GSM8K as lm-eval's <c>gsm8k_cot_zeroshot</c>: "Q: ... A: Let's think step by step.", 0-shot.</summary>
    Gsm8kCotZeroShot,
    /// <summary>HumanEval Python completion, executed against the tests, pass@1.</summary>
    HumanEval,
    /// <summary>SST-2 binary sentiment, log-likelihood of " negative"/" positive", accuracy.</summary>
    Sst2,
    /// <summary>CoLA acceptability, log-likelihood of " no"/" yes", Matthews correlation.</summary>
    Cola,
    /// <summary>MedQA (USMLE, 4 options), multiple choice by log-likelihood.</summary>
    MedQa,
    /// <summary>ARC-Easy, multiple choice by log-likelihood.</summary>
    ArcEasy,
    /// <summary>ARC-Challenge, multiple choice by log-likelihood.</summary>
    ArcChallenge,
}
