using System.Text.Json.Nodes;
using LoraMixer.Tests.Evaluation;
using LoraMixer.Tests.Training;

namespace LoraMixer.Tests.Cli;

/// <summary>eval's lm-eval records, skipped tasks and custom tasks; generate --jsonl.</summary>
public sealed class EvalProtocolCliTests
{
    [Fact]
    public void A_task_without_data_is_skipped_with_its_reason_while_the_others_run_and_the_exit_code_is_2()
    {
        string data = TestPaths.NewTempDir();
        EvalTestData.Write(data, "sst2/dev.tsv", "label\tsentence\n1\ta fine film\n0\ta dull mess\n1\tgood fun\n");
        string output = Path.Combine(TestPaths.NewTempDir(), "results.json");
        var run = CliRunner.Run("eval", "--model", TinyDefaultModel.Path_, "--tasks", "arc-e,sst2", "--data-dir", data, "--limit", "2", "--out", output);
        Assert.True(run.ExitCode == 2, run.Stderr);
        Assert.Contains("skipped arc-e: no test data", run.Stderr);
        var json = JsonNode.Parse(File.ReadAllText(output))!;
        var sst2 = json["results"]!.AsArray().Single()!;
        Assert.Equal("sst2", sst2["task"]!.GetValue<string>());
        Assert.Equal(2, sst2["n"]!.GetValue<int>());
        Assert.Equal("first 2 of 3", sst2["subset"]!.GetValue<string>());
        Assert.Equal("none (0-shot)", sst2["exemplar_split"]!.GetValue<string>());
        Assert.Contains("sst2", sst2["protocol_version"]!.GetValue<string>());
        Assert.Equal(64, sst2["data_files"]![0]!["sha256"]!.GetValue<string>().Length);
        Assert.Equal(2, sst2["items"]!.AsArray().Count);
        var skipped = json["skipped"]!.AsArray().Single()!;
        Assert.Equal("arc-e", skipped["task"]!.GetValue<string>());
        Assert.Contains("arc/ARC-Easy-Test.jsonl", skipped["reason"]!.GetValue<string>());
    }

    [Fact]
    public void Eval_scores_a_jsonl_task_and_generate_writes_machine_readable_outputs()
    {
        string dir = TestPaths.NewTempDir();
        string task = EvalTestData.Write(dir, "mine.jsonl", "{\"prompt\": \"1+1=\", \"response\": \"2\"}\n{\"prompt\": \"Is it?\", \"choices\": [\"yes\", \"no\"], \"answer\": 1}\n");
        var mixed = CliRunner.Run("eval", "--model", TinyDefaultModel.Path_, "--tasks", "jsonl:" + task);
        Assert.Equal(2, mixed.ExitCode); // one bad line of two is above 1%: the task is skipped, naming file and line
        Assert.Contains($"{task} line 2", mixed.Stderr);

        File.WriteAllText(task, "{\"prompt\": \"1+1=\", \"response\": \"2\"}\n{\"prompt\": \"2+2=\", \"response\": \"4\"}\n");
        string output = Path.Combine(dir, "r.json");
        var run = CliRunner.Run("eval", "--model", TinyDefaultModel.Path_, "--tasks", "jsonl:" + task, "--out", output);
        Assert.True(run.ExitCode == 0, run.Stderr);
        var result = JsonNode.Parse(File.ReadAllText(output))!["results"]![0]!;
        Assert.Equal("jsonl:mine.jsonl", result["task"]!.GetValue<string>());
        Assert.Equal("exact_match", result["metrics"]![0]!["name"]!.GetValue<string>());

        string jsonl = Path.Combine(dir, "out.jsonl");
        var generate = CliRunner.Run("generate", "--model", TinyDefaultModel.Path_, "-p", "ab", "-p", "hello", "--max-tokens", "5", "--jsonl", jsonl);
        Assert.True(generate.ExitCode == 0, generate.Stderr);
        var lines = File.ReadAllLines(jsonl).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(["ab", "hello"], lines.Select(l => l["prompt"]!.GetValue<string>()));
        foreach (var line in lines)
        {
            int generated = line["generated_tokens"]!.GetValue<int>();
            Assert.Equal(generated, line["token_ids"]!.AsArray().Count);
            Assert.InRange(generated, 0, 5);
            Assert.Contains(line["finish_reason"]!.GetValue<string>(), new[] { "eos", "length", "stop_string" });
            Assert.Equal(generated == 5 ? "length" : "eos", line["finish_reason"]!.GetValue<string>());
        }
        Assert.Equal(3, lines[0]["prompt_tokens"]!.GetValue<int>()); // BOS + 2 characters (character tokenizer)
    }
}
