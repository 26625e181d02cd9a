using LoraMixer.Evaluation;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using LoraMixer.Tests.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Evaluation;

public sealed class ProtocolTests : IDisposable
{
    private readonly LlamaForCausalLM _model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
    private readonly ITokenizer _tokenizer = EvalTestData.DemoCharTokenizer();

    public void Dispose() => _model.Dispose();

    private static readonly MultipleChoiceExample[] Arc =
    {
        new("q1", "Which is hot?", new[] { "A", "B", "C" }, new[] { "ice", "a big fire", "snow" }, 1),
        new("q2", "Which is wet?", new[] { "1", "2" }, new[] { "water", "dust" }, 0),
        new("q3", "Which flies?", new[] { "A", "B", "C", "D" }, new[] { "a bird", "a stone", "a rock", "x" }, 0),
        new("q4", "Which is cold?", new[] { "A", "B" }, new[] { "snow", "lava" }, 0),
    };

    [Fact]
    public void Arc_accuracy_and_length_normalised_accuracy_follow_the_choice_log_likelihoods()
    {
        var result = new ArcEvaluator(Arc, challenge: true).Evaluate(_model, _tokenizer, new EvalOptions { BatchSize = 3 });
        var scorer = new LoglikelihoodScorer(_model, _tokenizer);
        int correct = 0, correctNorm = 0;
        foreach (var e in Arc)
        {
            var ll = scorer.Score(e.Choices.Select(c => new LoglikelihoodRequest($"Question: {e.Question}\nAnswer:", " " + c)).ToArray())
                .Select(r => r.LogLikelihood).ToArray();
            var norm = ll.Select((v, i) => v / e.Choices[i].Length).ToArray();
            if (Array.IndexOf(ll, ll.Max()) == e.Gold) correct++;
            if (Array.IndexOf(norm, norm.Max()) == e.Gold) correctNorm++;
        }
        Assert.Equal("arc_challenge", result.Task);
        Assert.Equal(4, result.N);
        Assert.Equal(correct / 4.0, result.Metric("acc").Value, 12);
        Assert.Equal(correctNorm / 4.0, result.Metric("acc_norm").Value, 12);
        Assert.Equal(ArcEvaluator.TemplateId, result.TemplateId);
        var ci = result.Metric("acc").Ci95;
        Assert.True(ci.Lower <= result.Metric("acc").Value && result.Metric("acc").Value <= ci.Upper);
        Assert.True(result.TokensPerSecond > 0);
    }

    [Fact]
    public void MedQa_prompt_lists_lettered_options()
    {
        var e = new MultipleChoiceExample("r1", "Next?", new[] { "A", "B" }, new[] { "Rest", "Run" }, 1);
        Assert.Equal("Question: Next?\nA. Rest\nB. Run\nAnswer:", MedQaEvaluator.Prompt(e));
    }

    [Fact]
    public void Cola_reports_mcc_of_the_label_word_predictions()
    {
        var sentences = new[] { "The cat sat.", "Cat the sat.", "She runs.", "Runs she the.", "Birds fly.", "Fly birds the." }
            .Select((s, i) => new LabeledSentence(s, i % 2 == 0 ? 1 : 0)).ToArray();
        var result = new ColaEvaluator(sentences).Evaluate(_model, _tokenizer, new EvalOptions());
        var scorer = new LoglikelihoodScorer(_model, _tokenizer);
        var predicted = sentences.Select(s =>
        {
            var ll = scorer.Score(new[] { new LoglikelihoodRequest(ColaEvaluator.Prompt(s), " no"), new LoglikelihoodRequest(ColaEvaluator.Prompt(s), " yes") });
            return ll[1].LogLikelihood > ll[0].LogLikelihood ? 1 : 0;
        }).ToArray();
        Assert.Equal("mcc", result.Metrics[0].Name);
        Assert.Equal(ClassificationMetrics.MatthewsCorrelation(predicted, sentences.Select(s => s.Label).ToArray()), result.Metric("mcc").Value, 12);
    }

    [Fact]
    public void Limit_evaluates_a_seeded_subset_and_shots_prefix_exemplars_from_the_pool()
    {
        var pool = new[] { new LabeledSentence("a joy .", 1), new LabeledSentence("dull .", 0), new LabeledSentence("fine .", 1) };
        var sentences = Enumerable.Range(0, 10).Select(i => new LabeledSentence($"film {i} .", i % 2)).ToArray();
        var model = new ScriptedModel(_tokenizer, "x");
        var options = new EvalOptions { Limit = 4, LimitSeed = 5, Shots = 2, Seed = 5 };
        var result = new Sst2Evaluator(sentences, pool).Evaluate(model, _tokenizer, options);
        Assert.Equal(4, result.N);
        Assert.Equal(2, result.Shots);
        var subset = EvalSubset.Select(10, 4, 5);
        string first = $"film {subset[0]} .\nQuestion: Is this sentence positive or negative?\nAnswer:";
        var prompt = model.Prompts.First(p => p.Contains(first, StringComparison.Ordinal));
        Assert.Equal(2, pool.Count(p => prompt.Contains(Sst2Evaluator.Prompt(p) + " " + Sst2Evaluator.LabelWords[p.Label] + "\n\n", StringComparison.Ordinal)));
    }

    [Fact]
    public void Gsm8k_scores_greedy_generations_strict_and_flexible()
    {
        var examples = new[] { new Gsm8kExample("Two plus five?", "#### 7", "7"), new Gsm8kExample("Six plus two?", "#### 8", "8"), new Gsm8kExample("Ten?", "#### 10", "10") };
        var pool = new[] { new Gsm8kExample("One plus one?", "1+1=<<1+1=2>>2\n#### 2", "2") };
        // The scripted model answers "7" for everything; the blank line ends generation before the junk.
        var model = new ScriptedModel(_tokenizer, " 3+4=7 so\n#### 7\n\nQuestion: junk 8");
        var result = new Gsm8kEvaluator(examples, pool).Evaluate(model, _tokenizer, new EvalOptions { Shots = 1, MaxNewTokens = 60 });
        Assert.Equal(1 / 3.0, result.Metric("exact_match,strict-match").Value, 12);
        Assert.Equal(1 / 3.0, result.Metric("exact_match,flexible-extract").Value, 12);
        Assert.StartsWith("Question: One plus one?\nAnswer: 1+1=<<1+1=2>>2\n#### 2\n\nQuestion: ", model.Prompts[0]);
        Assert.EndsWith("\nAnswer:", model.Prompts[0]);

        // No train split: the default 5 shots fall back to 0 with a note (never exemplars from the scored split).
        var zeroShot = new ScriptedModel(_tokenizer, " 3 and 4 make 8.");
        var flexibleOnly = new Gsm8kEvaluator(examples).Evaluate(zeroShot, _tokenizer, new EvalOptions());
        Assert.Equal(0.0, flexibleOnly.Metric("exact_match,strict-match").Value);
        Assert.Equal(1 / 3.0, flexibleOnly.Metric("exact_match,flexible-extract").Value, 12);
        Assert.Equal("Question: Two plus five?\nAnswer:", zeroShot.Prompts[0]);
        Assert.Equal(0, flexibleOnly.Shots);
        Assert.Contains("0-shot instead of 5-shot", Assert.Single(flexibleOnly.Notes));
    }

    [Fact]
    public void HumanEval_is_refused_without_permission_to_execute_code()
    {
        var problems = new[] { new HumanEvalProblem("t/0", "def f():\n", "    return 1\n", "def check(c):\n    assert c() == 1\n", "f") };
        var model = new ScriptedModel(_tokenizer, "    return 1\n");
        var error = Assert.Throws<CodeExecutionNotAllowedException>(() => new HumanEvalEvaluator(problems).Evaluate(model, _tokenizer, new EvalOptions()));
        Assert.Contains("--allow-code-execution", error.Message);
        Assert.Empty(model.Prompts); // refused before generating anything
    }

    [Fact]
    public void HumanEval_executes_the_greedy_completion_cut_at_the_stop_sequence()
    {
        var problems = new[]
        {
            new HumanEvalProblem("t/0", "def add(a, b):\n", "    return a + b\n", "def check(c):\n    assert c(2, 3) == 5\n", "add"),
            new HumanEvalProblem("t/1", "def sub(a, b):\n", "    return a - b\n", "def check(c):\n    assert c(2, 3) == -1\n", "sub"),
        };
        var model = new ScriptedModel(_tokenizer, "    return a + b\n\ndef junk(:\n");
        var options = new EvalOptions { CodeExecution = new CodeExecutionOptions { PythonExecutable = EvalTestData.Python, AllowCodeExecution = true } };
        var result = new HumanEvalEvaluator(problems).Evaluate(model, _tokenizer, options);
        Assert.Equal(0.5, result.Metric("pass@1").Value, 12);
        Assert.Equal(2, result.N);
    }

    [Fact]
    public void HumanEval_with_n_samples_reports_the_unbiased_pass_at_k_of_the_sampled_completions()
    {
        var problems = new[]
        {
            new HumanEvalProblem("t/0", "def add(a, b):\n", "    return a + b\n", "def check(c):\n    assert c(2, 3) == 5\n", "add"),
            new HumanEvalProblem("t/1", "def sub(a, b):\n", "    return a - b\n", "def check(c):\n    assert c(2, 3) == -1\n", "sub"),
        };
        // Each completion is one of two equally likely scripts: "+" passes t/0 only, "-" passes t/1 only.
        var model = new ScriptedModel(_tokenizer, "    return a + b\n", alternative: "    return a - b\n");
        var options = new EvalOptions
        {
            Samples = 10, BatchSize = 4,
            CodeExecution = new CodeExecutionOptions { PythonExecutable = EvalTestData.Python, AllowCodeExecution = true },
        };
        var result = new HumanEvalEvaluator(problems).Evaluate(model, _tokenizer, options);

        Assert.Equal(20, model.Prompts.Count);
        Assert.All(model.Branches, b => Assert.InRange(b, 0, 1));
        int plusForAdd = model.Branches.Take(10).Count(b => b == 0), minusForSub = model.Branches.Skip(10).Count(b => b == 1);
        Assert.InRange(plusForAdd + minusForSub, 1, 19); // sampling took both branches
        Assert.Equal(["pass@1", "pass@10"], result.Metrics.Select(m => m.Name));
        Assert.Equal((plusForAdd / 10.0 + minusForSub / 10.0) / 2, result.Metric("pass@1").Value, 12);
        // With n = k = 10, pass@10 is 1 for a problem with any passing sample.
        Assert.Equal(((plusForAdd > 0 ? 1 : 0) + (minusForSub > 0 ? 1 : 0)) / 2.0, result.Metric("pass@10").Value, 12);
        Assert.Equal(10, result.Samples);

        var again = new ScriptedModel(_tokenizer, "    return a + b\n", alternative: "    return a - b\n");
        new HumanEvalEvaluator(problems).Evaluate(again, _tokenizer, options);
        Assert.Equal(model.Branches, again.Branches); // seeded
    }

    [Fact]
    public void Generation_prompts_longer_than_the_window_keep_their_end()
    {
        var examples = new[] { new Gsm8kExample(new string('x', 300) + " Two plus five?", "#### 7", "7"), new Gsm8kExample("Ten?", "#### 10", "10") };
        var model = new ScriptedModel(_tokenizer, " #### 7", maxPositionEmbeddings: 128);
        var result = new Gsm8kEvaluator(examples).Evaluate(model, _tokenizer, new EvalOptions { MaxNewTokens = 100 });

        // Window 128, 100 new tokens: the prompt keeps max(128 - 100, 128 / 2) = 64 tokens, its end.
        Assert.Equal(1, result.TruncatedPrompts);
        var cut = model.Prompts.Single(p => p.Contains("Two plus five?"));
        Assert.Equal(64, _tokenizer.Encode(cut, addBos: false).Count);
        Assert.EndsWith("Two plus five?\nAnswer:", cut);
        Assert.Equal(0.5, result.Metric("exact_match,strict-match").Value, 12);
        Assert.Equal(64, GenerationPrompt.ContextBudget(128, 100));
        Assert.Equal(100, GenerationPrompt.ContextBudget(128, 28));
    }
}
