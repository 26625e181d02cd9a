using LoraMixer.Errors;
using LoraMixer.Evaluation;

namespace LoraMixer.Tests.Evaluation;

public sealed class TaskLoaderTests
{
    private readonly string _dir = TestPaths.NewTempDir();

    [Fact]
    public void Gsm8k_lines_give_question_rationale_and_normalised_gold()
    {
        string path = EvalTestData.Write(_dir, "gsm8k/test.jsonl",
            "{\"question\": \"How many?\", \"answer\": \"2 * 3 = <<2*3=6>>6\\n#### 1,000\"}\n\n" +
            "{\"question\": \"Owe?\", \"answer\": \"#### -3\"}\n");
        var data = Gsm8kLoader.Load(path);
        Assert.Equal(2, data.Examples.Count);
        Assert.Equal("How many?", data.Examples[0].Question);
        Assert.Equal("1000", data.Examples[0].Gold);
        Assert.Equal("-3", data.Examples[1].Gold);
        Assert.Empty(data.SkippedLines);
    }

    [Fact]
    public void A_malformed_line_is_skipped_and_reported_with_file_and_line_when_rare()
    {
        var lines = Enumerable.Range(0, 150).Select(i => $"{{\"question\": \"q{i}\", \"answer\": \"#### {i}\"}}").ToList();
        lines[41] = "{\"question\": \"no final answer\", \"answer\": \"42\"}";
        string path = EvalTestData.Write(_dir, "gsm8k/test.jsonl", string.Join("\n", lines));
        var data = Gsm8kLoader.Load(path);
        Assert.Equal(149, data.Examples.Count);
        var message = Assert.Single(data.SkippedLines);
        Assert.Contains(path, message);
        Assert.Contains("line 42", message);
    }

    [Fact]
    public void More_than_one_percent_of_malformed_lines_is_an_error_naming_the_file()
    {
        var lines = Enumerable.Range(0, 150).Select(i => $"{{\"question\": \"q{i}\", \"answer\": \"#### {i}\"}}").ToList();
        lines[3] = "not json";
        lines[7] = "{\"question\": \"q\"}";
        string path = EvalTestData.Write(_dir, "gsm8k/test.jsonl", string.Join("\n", lines));
        var error = Assert.Throws<DataFormatException>(() => Gsm8kLoader.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("2 of 150", error.Message);
        Assert.Contains("line 4", error.Message);
    }

    [Fact]
    public void A_missing_file_names_the_expected_path_and_format()
    {
        string path = Path.Combine(_dir, "medqa", "phrases_no_exclude_test.jsonl");
        var error = Assert.Throws<DataFormatException>(() => MedQaLoader.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("answer_idx", error.Message);
        Assert.DoesNotContain("\n", error.Message);
    }

    [Fact]
    public void HumanEval_reads_the_gzip_file()
    {
        string path = EvalTestData.WriteGz(_dir, "humaneval/HumanEval.jsonl.gz",
            "{\"task_id\": \"HumanEval/0\", \"prompt\": \"def f(x):\\n\", \"entry_point\": \"f\", \"canonical_solution\": \"    return x\\n\", \"test\": \"def check(c):\\n    assert c(1) == 1\\n\"}\n");
        var problem = Assert.Single(HumanEvalLoader.Load(path).Examples);
        Assert.Equal("HumanEval/0", problem.TaskId);
        Assert.Equal("def f(x):\n", problem.Prompt);
        Assert.Equal("f", problem.EntryPoint);
        Assert.Equal("    return x\n", problem.CanonicalSolution);
        Assert.StartsWith("def check", problem.Test);
    }

    [Fact]
    public void Sst2_skips_the_header_and_reads_label_first()
    {
        string path = EvalTestData.Write(_dir, "sst2/dev.tsv", "label\tcontent\n0\ta dull film .\n1\ta joy .\n");
        var data = Sst2Loader.Load(path);
        Assert.Equal(new[] { new LabeledSentence("a dull film .", 0), new LabeledSentence("a joy .", 1) }, data.Examples);
        Assert.Empty(data.SkippedLines);
    }

    [Fact]
    public void Sst2_with_glue_header_reads_sentence_first()
    {
        string path = EvalTestData.Write(_dir, "sst2/dev.tsv", "sentence\tlabel\na joy .\t1\n");
        Assert.Equal(new LabeledSentence("a joy .", 1), Assert.Single(Sst2Loader.Load(path).Examples));
    }

    [Fact]
    public void Cola_reads_the_headerless_four_column_file()
    {
        string path = EvalTestData.Write(_dir, "cola/in_domain_dev.tsv", "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe more we study verbs.\n");
        var data = ColaLoader.Load(path);
        Assert.Equal(new[] { new LabeledSentence("The sailors rode the breeze.", 1), new LabeledSentence("The more we study verbs.", 0) }, data.Examples);
    }

    [Fact]
    public void MedQa_reads_options_and_answer_index()
    {
        string path = EvalTestData.Write(_dir, "medqa/test.jsonl",
            "{\"question\": \"Next step?\", \"answer\": \"Tell\", \"options\": {\"A\": \"Disclose\", \"B\": \"Tell\", \"C\": \"Report\", \"D\": \"Refuse\"}, \"meta_info\": \"step1\", \"answer_idx\": \"B\", \"metamap_phrases\": []}\n");
        var example = Assert.Single(MedQaLoader.Load(path).Examples);
        Assert.Equal(new[] { "A", "B", "C", "D" }, example.Labels);
        Assert.Equal(new[] { "Disclose", "Tell", "Report", "Refuse" }, example.Choices);
        Assert.Equal(1, example.Gold);
    }

    [Fact]
    public void Arc_accepts_letter_and_numeric_labels()
    {
        string path = EvalTestData.Write(_dir, "arc/ARC-Easy-Test.jsonl",
            EvalTestData.ArcLine("q1", "Which is hot?", new[] { "A", "B", "C", "D", "E" }, new[] { "ice", "fire", "snow", "rain", "fog" }, "B") + "\n" +
            EvalTestData.ArcLine("q2", "Which is wet?", new[] { "1", "2", "3", "4" }, new[] { "sand", "dust", "water", "ash" }, "3") + "\n");
        var examples = ArcLoader.Load(path).Examples;
        Assert.Equal(1, examples[0].Gold);
        Assert.Equal(5, examples[0].Choices.Count);
        Assert.Equal(2, examples[1].Gold);
        Assert.Equal("water", examples[1].Choices[examples[1].Gold]);
    }

    [Fact]
    public void Arc_answer_key_outside_the_labels_is_reported()
    {
        var lines = Enumerable.Range(0, 120).Select(i => EvalTestData.ArcLine($"q{i}", "Stem?", new[] { "A", "B" }, new[] { "x", "y" }, "A")).ToList();
        lines[0] = EvalTestData.ArcLine("bad", "Stem?", new[] { "A", "B" }, new[] { "x", "y" }, "E");
        var data = ArcLoader.Load(EvalTestData.Write(_dir, "arc/t.jsonl", string.Join("\n", lines)));
        Assert.Equal(119, data.Examples.Count);
        Assert.Contains("line 1", data.SkippedLines[0]);
        Assert.Contains("answerKey", data.SkippedLines[0]);
    }

    [SkippableFact]
    public void The_shared_benchmark_files_load_with_their_documented_row_counts()
    {
        var locator = new EvalDataLocator(TestPaths.RequireShared("data"));
        Assert.Equal(1319, Gsm8kLoader.Load(locator.PathFor(EvalTask.Gsm8k)).Examples.Count);
        Assert.Equal(164, HumanEvalLoader.Load(locator.PathFor(EvalTask.HumanEval)).Examples.Count);
        Assert.Equal(872, Sst2Loader.Load(locator.PathFor(EvalTask.Sst2)).Examples.Count);
        Assert.Equal(527, ColaLoader.Load(Assert.Single(locator.EvalFiles(EvalTask.Cola).Files)).Examples.Count);
        var medqa = MedQaLoader.Load(locator.PathFor(EvalTask.MedQa)).Examples;
        Assert.Equal(1273, medqa.Count);
        Assert.Equal(353, medqa.Count(e => e.Gold == 0));
    }
}
