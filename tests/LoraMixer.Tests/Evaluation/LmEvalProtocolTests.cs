using LoraMixer.Errors;
using LoraMixer.Evaluation;
using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Evaluation;

/// <summary>The lm-evaluation-harness task protocols (issue 12): prompts, shots, stops, exemplar splits, subsets, data records.</summary>
public sealed class LmEvalProtocolTests
{
    private readonly ITokenizer _tokenizer = EvalTestData.DemoCharTokenizer();

    private static readonly Gsm8kExample[] Test =
    [
        new("Two plus five?", "2+5=7\n#### 7", "7"), new("Six plus two?", "6+2=8\n#### 8", "8"), new("Ten?", "#### 10", "10"),
    ];

    private static readonly Gsm8kExample[] Train = Enumerable.Range(1, 6).Select(i => new Gsm8kExample($"Train {i}?", $"so {i}\n#### {i}", $"{i}")).ToArray();

    [Fact]
    public void Gsm8k_v3_is_five_shot_question_answer_and_stops_at_Question_not_at_a_blank_line()
    {
        // Generation continues through the blank line (not a v3 stop) and stops at "Question:".
        var model = new ScriptedModel(_tokenizer, " 2+5=7\n\n#### 7\nQuestion: #### 9");
        var result = new Gsm8kEvaluator(Test, Train).Evaluate(model, _tokenizer, new EvalOptions { MaxNewTokens = 40 });
        Assert.Equal("gsm8k", result.Task);
        Assert.Equal(5, result.Shots);
        Assert.Equal(Gsm8kEvaluator.TemplateId, result.TemplateId);
        Assert.Contains("gsm8k 3.0", result.ProtocolVersion);
        // lm-eval: doc_to_text + " " + answer, blocks joined by a blank line, then the question.
        string prompt = model.Prompts[0];
        Assert.Equal(5, Train.Count(t => prompt.Contains($"Question: {t.Question}\nAnswer: {t.Answer}\n\n", StringComparison.Ordinal)));
        Assert.EndsWith("\n\nQuestion: Two plus five?\nAnswer:", prompt);
        // "#### 7" came after the blank line, so only a generation that went past it finds it; "#### 9" is after the stop.
        Assert.Equal(1 / 3.0, result.Metric("exact_match,strict-match").Value, 12);
        Assert.Equal([1.0, 0.0, 0.0], result.Items.Select(i => i.Score));
        Assert.Equal(["Question:", "</s>", "<|im_end|>"], Gsm8kEvaluator.StopStrings);
    }

    [Fact]
    public void Gsm8k_cot_zeroshot_is_its_own_task_with_Q_A_prompt_and_The_answer_is_extraction()
    {
        var model = new ScriptedModel(_tokenizer, " 2 and 5. The answer is 7.\nQ: more");
        var result = new Gsm8kEvaluator(Test, Train, cotZeroShot: true).Evaluate(model, _tokenizer, new EvalOptions { MaxNewTokens = 40 });
        Assert.Equal("gsm8k_cot_zeroshot", result.Task);
        Assert.Equal(0, result.Shots);
        Assert.Equal("Q: Two plus five?\nA: Let's think step by step.", model.Prompts[0]);
        Assert.Equal(1 / 3.0, result.Metric("exact_match,strict-match").Value, 12);
        // lm-eval's pattern ends in "." (any character): the greedy group keeps the period, which "\.$" then ignores.
        Assert.Equal("7.", Gsm8kAnswer.ExtractStrictCot("so The answer is 7. ok"));
        Assert.True(Gsm8kAnswer.IsMatch("7.", "7"));
        Assert.Equal(Gsm8kAnswer.Invalid, Gsm8kAnswer.ExtractStrictCot("#### 7"));
    }

    [Fact]
    public void Limit_takes_the_first_n_as_lm_eval_and_limit_seed_a_random_subset()
    {
        Assert.Equal([0, 1, 2], EvalSubset.Choose(10, 3, null));
        Assert.Equal(EvalSubset.Select(10, 3, 7), EvalSubset.Choose(10, 3, 7));
        Assert.NotEqual([0, 1, 2], EvalSubset.Choose(100, 3, 7));
        Assert.Equal("first 3 of 10", EvalSubset.Describe(10, 3, 3, null));
        Assert.Equal("all 10", EvalSubset.Describe(10, 10, null, null));

        var model = new ScriptedModel(_tokenizer, " #### 1");
        var first = new Gsm8kEvaluator(Test).Evaluate(model, _tokenizer, new EvalOptions { Limit = 2, Shots = 0, MaxNewTokens = 10 });
        Assert.Equal(2, first.N);
        Assert.Equal([0, 1], first.Items.Select(i => i.Index));
        Assert.Equal("first 2 of 3", first.Subset);
    }

    [Fact]
    public void Exemplars_come_from_the_scored_split_only_when_named_and_never_the_example_itself()
    {
        var sentences = Enumerable.Range(0, 6).Select(i => new LabeledSentence($"film {i} .", i % 2)).ToArray();
        var model = new ScriptedModel(_tokenizer, "x");
        var result = new Sst2Evaluator(sentences, sentences, poolIsEvaluatedSplit: true).Evaluate(model, _tokenizer, new EvalOptions { Shots = 5 });
        Assert.Equal(5, result.Shots);
        foreach (var (sentence, i) in sentences.Select((s, i) => (s, i)))
        {
            // Each example's context holds the 5 others as exemplars, never itself.
            var prompt = model.Prompts.First(p => p[(p.LastIndexOf("\n\n", StringComparison.Ordinal) + 2)..].StartsWith(Sst2Evaluator.Prompt(sentence), StringComparison.Ordinal));
            string exemplars = prompt[..(prompt.LastIndexOf("\n\n", StringComparison.Ordinal) + 2)];
            Assert.DoesNotContain(Sst2Evaluator.Prompt(sentence), exemplars);
            Assert.Equal(5, sentences.Count(o => exemplars.Contains(Sst2Evaluator.Prompt(o) + " " + Sst2Evaluator.LabelWords[o.Label] + "\n\n", StringComparison.Ordinal)));
        }

        // Without any pool, asked-for shots become 0 with a note.
        var bare = new Sst2Evaluator(sentences).Evaluate(new ScriptedModel(_tokenizer, "x"), _tokenizer, new EvalOptions { Shots = 2 });
        Assert.Equal(0, bare.Shots);
        Assert.Single(bare.Notes);
    }

    [Fact]
    public void The_factory_records_exemplar_split_hashes_and_refuses_a_missing_named_split()
    {
        string dir = TestPaths.NewTempDir();
        EvalTestData.Write(dir, "medqa/phrases_no_exclude_test.jsonl", string.Join("\n", Enumerable.Range(0, 4).Select(i =>
            $"{{\"question\": \"Q{i}?\", \"options\": {{\"A\": \"yes\", \"B\": \"no\"}}, \"answer_idx\": \"A\"}}")));
        var locator = new EvalDataLocator(dir);
        var model = new ScriptedModel(_tokenizer, "x");

        var plain = TaskEvaluators.Create(EvalTask.MedQa, locator).Evaluate(model, _tokenizer, new EvalOptions { Shots = 2 });
        Assert.Equal(0, plain.Shots); // MedQA here has only a test split
        Assert.Equal("none (0-shot)", plain.ExemplarSplit);
        Assert.Contains(plain.Notes, n => n.Contains("0-shot instead of 2-shot", StringComparison.Ordinal));
        var file = Assert.Single(plain.DataFiles);
        Assert.Equal("eval", file.Role);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file.Path))), file.Sha256);

        var named = TaskEvaluators.Create(EvalTask.MedQa, locator, fewShotSplit: "test").Evaluate(model, _tokenizer, new EvalOptions { Shots = 2 });
        Assert.Equal(2, named.Shots);
        Assert.StartsWith("test (the scored split", named.ExemplarSplit);

        var error = Assert.Throws<DataFormatException>(() => TaskEvaluators.Create(EvalTask.MedQa, locator, fewShotSplit: "train"));
        Assert.Contains("medqa/phrases_no_exclude_train.jsonl", error.Message);
    }

    [Fact]
    public void Data_file_hash_is_the_sha256_of_the_bytes()
    {
        string path = EvalTestData.Write(TestPaths.NewTempDir(), "abc.txt", "abc");
        // FIPS 180-2 test vector for "abc".
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", DataFileHash.Of("eval", path).Sha256);
    }

    [Fact]
    public void Cola_scores_glue_full_validation_when_both_parts_exist_and_reads_glue_dev_tsv()
    {
        string dir = TestPaths.NewTempDir();
        EvalTestData.Write(dir, "cola/in_domain_dev.tsv", "gj04\t1\t\tThe dog barks.\ngj04\t0\t*\tDog the barks.\n");
        EvalTestData.Write(dir, "cola/out_of_domain_dev.tsv", "clc95\t1\t\tIt rains.\n");
        var locator = new EvalDataLocator(dir);
        var (files, notes) = locator.EvalFiles(EvalTask.Cola);
        Assert.Equal(["in_domain_dev.tsv", "out_of_domain_dev.tsv"], files.Select(Path.GetFileName));
        Assert.Empty(notes);
        var result = TaskEvaluators.Create(EvalTask.Cola, locator).Evaluate(new ScriptedModel(_tokenizer, "x"), _tokenizer, new EvalOptions());
        Assert.Equal(3, result.N);
        Assert.Equal(2, result.DataFiles.Count);
        Assert.Equal("mcc", result.Metrics[0].Name);

        // GLUE's CoLA/dev.tsv (both domains in one file) wins when present.
        EvalTestData.Write(dir, "cola/dev.tsv", "gj04\t1\t\tA.\ngj04\t1\t\tB.\nclc95\t0\t*\tC the.\nclc95\t1\t\tD.\n");
        Assert.Equal("dev.tsv", Path.GetFileName(Assert.Single(locator.EvalFiles(EvalTask.Cola).Files)));

        // Only the in-domain part: scored, with a note that says so.
        File.Delete(Path.Combine(dir, "cola", "dev.tsv"));
        File.Delete(Path.Combine(dir, "cola", "out_of_domain_dev.tsv"));
        Assert.Contains("in-domain dev", Assert.Single(locator.EvalFiles(EvalTask.Cola).Notes));

        // A header naming the columns (a Hugging Face export) is read by name.
        string headed = EvalTestData.Write(dir, "x/cola.tsv", "sentence\tlabel\tidx\nThe dog barks.\t1\t0\nDog the barks.\t0\t1\n");
        Assert.Equal([new LabeledSentence("The dog barks.", 1), new LabeledSentence("Dog the barks.", 0)], ColaLoader.Load(headed).Examples);
    }

    [Fact]
    public void Arc_reads_ai2_and_hugging_face_schemas_alike()
    {
        var ai2 = ArcLoader.Parse(EvalTestData.ArcLine("Mercury_1", "Which is hot?", ["A", "B"], ["ice", "fire"], "B"));
        var hf = ArcLoader.Parse("{\"id\": \"Mercury_1\", \"question\": \"Which is hot?\", \"choices\": {\"text\": [\"ice\", \"fire\"], \"label\": [\"A\", \"B\"]}, \"answerKey\": \"B\"}");
        Assert.Equal(ai2.Question, hf.Question);
        Assert.Equal(ai2.Choices, hf.Choices);
        Assert.Equal(ai2.Labels, hf.Labels);
        Assert.Equal(1, hf.Gold);
        Assert.Throws<FormatException>(() => ArcLoader.Parse("{\"id\": \"x\", \"question\": 3, \"answerKey\": \"A\"}"));
    }

    [Fact]
    public void Acc_norm_divides_by_characters_and_acc_bytes_by_utf8_bytes()
    {
        // "ééé" is 3 characters but 6 bytes. ll = [-2, -5]: per character -1 vs -1.67 (choice 0); per byte -1 vs -0.83 (choice 1).
        string[] choices = ["ab", "ééé"];
        double[] ll = [-2, -5];
        Assert.Equal(0, ChoicePrediction.Raw(ll));
        Assert.Equal(0, ChoicePrediction.PerCharacter(ll, choices));
        Assert.Equal(1, ChoicePrediction.PerByte(ll, choices));
        Assert.Equal(2, ChoicePrediction.Characters("a\U0001D538")); // a surrogate pair is one character, as Python's len
        Assert.Equal(0, ChoicePrediction.Raw([-1.0, -1.0])); // ties: the first, as numpy
    }
}
