using LoraMixer.Errors;
using LoraMixer.Evaluation;
using LoraMixer.Models.Llama;
using LoraMixer.Tests.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Evaluation;

/// <summary><c>eval --tasks jsonl:PATH</c>: a user's own task, by generation or by log-likelihood.</summary>
public sealed class CustomTaskTests
{
    private readonly ITokenizer _tokenizer = EvalTestData.DemoCharTokenizer();

    private static string Lines(params string[] lines) => EvalTestData.Write(TestPaths.NewTempDir(), "task.jsonl", string.Join("\n", lines) + "\n");

    [Fact]
    public void Response_lines_are_scored_by_greedy_generation_and_normalised_exact_match()
    {
        string path = Lines("{\"prompt\": \"Capital of France?\", \"response\": \"paris\"}", "{\"prompt\": \"Capital of Peru?\", \"response\": \"Lima\"}");
        var evaluator = CustomTaskEvaluator.Create(path);
        // Every prompt gets " Paris", then a newline (a stop, since no expected response has one), then junk.
        var model = new ScriptedModel(_tokenizer, " Paris\nLima");
        var result = evaluator.Evaluate(model, _tokenizer, new EvalOptions());
        Assert.Equal("jsonl:task.jsonl", result.Task);
        Assert.Equal("exact_match", result.Metrics[0].Name);
        Assert.Equal(0.5, result.Metric("exact_match").Value, 12);
        Assert.Equal([1.0, 0.0], result.Items.Select(i => i.Score));
        Assert.Equal(["Capital of France?", "Capital of Peru?"], model.Prompts);
        Assert.Equal(path, Assert.Single(result.DataFiles).Path);
        Assert.Equal("paris is big", CustomTaskEvaluator.Normalize("  PaRis \t is\nBIG "));
    }

    [Fact]
    public void Choice_lines_are_scored_by_log_likelihood_with_the_answer_as_index_or_text()
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
        string path = Lines(
            "{\"prompt\": \"Is fire hot?\", \"choices\": [\"yes\", \"no\"], \"answer\": 0}",
            "{\"prompt\": \"Is ice hot?\", \"choices\": [\"yes\", \"no\"], \"answer\": \"no\"}",
            "{\"prompt\": \"Pick one:\", \"choices\": [\"a\", \"bb\", \"ccc\"], \"answer\": 2}");
        var result = CustomTaskEvaluator.Create(path).Evaluate(model, _tokenizer, new EvalOptions());
        var scorer = new LoglikelihoodScorer(model, _tokenizer);
        (string Prompt, string[] Choices, int Gold)[] expected = [("Is fire hot?", ["yes", "no"], 0), ("Is ice hot?", ["yes", "no"], 1), ("Pick one:", ["a", "bb", "ccc"], 2)];
        int correct = expected.Count(e =>
        {
            var ll = scorer.Score(e.Choices.Select(c => new LoglikelihoodRequest(e.Prompt, " " + c)).ToArray()).Select(r => r.LogLikelihood).ToArray();
            return Array.IndexOf(ll, ll.Max()) == e.Gold;
        });
        Assert.Equal(3, result.N);
        Assert.Equal(correct / 3.0, result.Metric("acc").Value, 12);
        Assert.Equal([0, 1, 2], result.Items.Select(i => i.Gold!.Value));
    }

    [Fact]
    public void A_bad_line_is_named_and_counted_under_one_percent_and_fatal_above()
    {
        var good = Enumerable.Range(0, 100).Select(i => $"{{\"prompt\": \"q{i}\", \"response\": \"a{i}\"}}").ToArray();
        string onePercent = Lines([.. good[..50], "{\"prompt\": \"q\", \"choices\": [\"a\", \"b\"], \"answer\": 0}", .. good[50..]]);
        var messages = new List<string>();
        var evaluator = CustomTaskEvaluator.Create(onePercent, messages.Add);
        Assert.Equal(100, evaluator.Count);
        Assert.Equal($"{onePercent} line 51: has \"choices\" but the file's first line set generation (\"response\"); one kind per file; skipped", Assert.Single(messages));
        var result = evaluator.Record(new EvalResult("t", [], 0, "x", 0, 0, 0));
        Assert.Equal(1, result.SkippedLines);

        string tooMany = Lines([.. good[..98], "{\"prompt\": 1}", "not json"]);
        var error = Assert.Throws<DataFormatException>(() => CustomTaskEvaluator.Create(tooMany));
        Assert.Contains(tooMany, error.Message);
        Assert.Contains("2 of 100 lines are malformed", error.Message);

        Assert.Contains("not one of the choices", Assert.Throws<DataFormatException>(() => CustomTaskEvaluator.Create(Lines("{\"prompt\": \"p\", \"choices\": [\"a\", \"b\"], \"answer\": \"c\"}"))).Message);
    }
}
