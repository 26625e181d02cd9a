using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.IO;
using LoraMixer.Lora;

namespace LoraMixer.Tests.Cli;

/// <summary>
/// The training commands end to end through the built tool: pretrain → lora train → mixer train (both
/// paradigms) → mixer inspect / generate / logits, resumption, and the one-line errors. One class, so the
/// tiny base model, adapters and mixer below are made once and the tests run one after another.
/// </summary>
public sealed class TrainingCommandTests
{
    private static readonly string Root = TestPaths.NewTempDir();

    // A real default model with a tokenizer (the fixtures have none): two pretraining steps take about a second.
    private static readonly Lazy<string> Base = new(() => Succeeds(Path.Combine(Root, "base"),
        "pretrain", "--steps", "2", "--documents", "200", "--out", Path.Combine(Root, "base")));

    private static readonly Lazy<string> Data = new(() => WriteData("data.jsonl", Enumerable.Range(0, 12).SelectMany(i => new[]
    {
        Record(f: $"add {i} 1:", r: $" {i + 1}", task: "math"),
        Record(f: $"say {i}:", r: $" hi {i}", task: "chat"),
    })));

    private static readonly Lazy<string> AdapterA = new(() => Succeeds(Path.Combine(Root, "adapter-a"),
        "lora", "train", "--model", Base.Value, "--data", Data.Value, "--out", Path.Combine(Root, "adapter-a"),
        "--rank", "4", "--alpha", "8", "--max-steps", "3", "--batch-size", "4", "--lr", "1e-2"));

    private static readonly Lazy<string> AdapterB = new(() => Succeeds(Path.Combine(Root, "adapter-b"),
        "lora", "train", "--model", Base.Value, "--data", Data.Value, "--out", Path.Combine(Root, "adapter-b"),
        "--rank", "2", "--alpha", "4", "--targets", "q_proj,v_proj", "--max-steps", "2", "--batch-size", "4"));

    private static readonly Lazy<string> JointMixer = new(() => Succeeds(Path.Combine(Root, "joint"),
        "mixer", "train", "--model", Base.Value, "--data", Data.Value, "--out", Path.Combine(Root, "joint"),
        "--stage1-samples", "16", "--stage2-samples", "8", "--batch-size", "4", "--rank", "4", "--alpha", "8", "--stage1-lr", "1e-2"));

    private static readonly Lazy<float[]> PlainLogits = new(() => Logits());

    [Fact]
    public void Pretrain_writes_a_model_folder_with_a_tokenizer()
    {
        foreach (string file in new[] { "config.json", "model.safetensors", "tokenizer.json" })
            Assert.True(File.Exists(Path.Combine(Base.Value, file)), file);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Base.Value, "config.json")))!;
        Assert.Equal(2, config["loramixer_pretraining"]!["steps"]!.GetValue<int>());
    }

    [Fact]
    public void Lora_train_writes_a_PEFT_adapter_that_generate_and_logits_apply()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(AdapterA.Value, "adapter_config.json")))!;
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
        Assert.Equal(4, config["r"]!.GetValue<int>());
        Assert.Equal(Base.Value, config["base_model_name_or_path"]!.GetValue<string>());
        using (var adapter = PeftAdapter.Load(AdapterA.Value))
            Assert.Equal(4 * 4, adapter.Modules.Count); // 4 blocks × q, k, v, o
        Assert.True(File.Exists(Path.Combine(AdapterA.Value, "train_log.jsonl")));

        var generated = CliRunner.Run("generate", "--model", Base.Value, "--adapter", AdapterA.Value, "--prompt", "add 3 1:", "--max-tokens", "4");
        Assert.True(generated.ExitCode == 0, generated.Stderr);
        Assert.StartsWith("add 3 1:", generated.Stdout);

        // The merged adapter changes the model's output.
        var plain = PlainLogits.Value;
        var adapted = Logits("--adapter", AdapterA.Value);
        Assert.Equal(plain.Length, adapted.Length);
        Assert.True(plain.Zip(adapted).Max(p => Math.Abs(p.First - p.Second)) > 1e-4);
    }

    [Fact]
    public void Lora_train_resumed_after_a_crash_matches_an_uninterrupted_run()
    {
        string[] Args(string dir) => ["lora", "train", "--model", Base.Value, "--data", Data.Value, "--out", dir,
            "--rank", "2", "--max-steps", "4", "--checkpoint-every", "2", "--batch-size", "4", "--lr", "1e-2"];
        string whole = Succeeds(Path.Combine(Root, "whole"), Args(Path.Combine(Root, "whole")));
        string crashed = Succeeds(Path.Combine(Root, "crashed"), Args(Path.Combine(Root, "crashed")));

        // As if the process died after the step-2 checkpoint: the adapter never got written.
        File.WriteAllText(Path.Combine(crashed, "checkpoints", "latest"), "step-000002");
        File.Delete(Path.Combine(crashed, "adapter_config.json"));
        File.Delete(Path.Combine(crashed, "adapter_model.safetensors"));
        var resumed = CliRunner.Run([.. Args(crashed), "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Equal(File.ReadAllBytes(Path.Combine(whole, "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(crashed, "adapter_model.safetensors")));

        // Resuming a finished run changes nothing; starting over in a used folder is refused.
        var again = CliRunner.Run([.. Args(whole), "--resume"]);
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Contains("already finished", again.Stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(crashed, "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(whole, "adapter_model.safetensors")));
        AssertOneLineError(CliRunner.Run(Args(whole)), "--resume");

        // Other data of the same size, or another setting, is refused on resume, naming the flag.
        string other = WriteData("lora-other.jsonl", File.ReadAllLines(Data.Value).Select(l => l.Replace("hi", "yo")));
        string[] withOtherData = [.. Args(crashed), "--resume"];
        withOtherData[Array.IndexOf(withOtherData, Data.Value)] = other;
        AssertOneLineError(CliRunner.Run(withOtherData), "--data was sha256:");
        AssertOneLineError(CliRunner.Run([.. Args(crashed), "--resume", "--alpha", "4"]), "--alpha was 16 and is now 4");
        AssertOneLineError(CliRunner.Run([.. Args(crashed), "--resume", "--seed", "3"]), "--seed was 0 and is now 3");
    }

    [Fact]
    public void Joint_mixer_training_writes_a_mixer_that_inspect_generate_and_logits_accept()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(JointMixer.Value, "mixer_config.json")))!;
        Assert.Equal(new[] { "math", "chat" }, config["experts"]!.AsArray().Select(e => e!["name"]!.GetValue<string>()));
        Assert.Equal("joint", config["training"]!["paradigm"]!.GetValue<string>());
        Assert.Equal(16, config["training"]!["stage1"]!["samples"]!.GetValue<int>());
        Assert.Equal(8, config["training"]!["stage2"]!["samples"]!.GetValue<int>());
        var stats = JsonNode.Parse(File.ReadAllText(Path.Combine(JointMixer.Value, "routing_stats.json")))!;
        Assert.Equal(4, stats["routers"]!.AsArray().Count);
        foreach (var router in stats["routers"]!.AsArray())
            Assert.Equal(1.0, router!["load"]!.AsArray().Sum(v => v!.GetValue<double>()), 3);
        Assert.True(Directory.Exists(JointMixer.Value + "-training/stage1-mixer"));

        var inspect = CliRunner.Run("mixer", "inspect", JointMixer.Value, "--data", Data.Value);
        Assert.True(inspect.ExitCode == 0, inspect.Stderr);
        Assert.Contains("task × expert", inspect.Stdout);
        Assert.Contains("layer 3", inspect.Stdout);
        Assert.Contains("experts/chat", inspect.Stdout);

        var generated = CliRunner.Run("generate", "--model", Base.Value, "--mixer", JointMixer.Value, "--prompt", "say 2:", "--max-tokens", "4");
        Assert.True(generated.ExitCode == 0, generated.Stderr);
        var topTwo = Logits("--mixer", JointMixer.Value);
        var topOne = Logits("--mixer", JointMixer.Value, "--top-k-experts", "1");
        Assert.NotEqual(PlainLogits.Value, topTwo);
        Assert.NotEqual(topTwo, topOne);
    }

    [Fact]
    public void Mixer_train_resume_skips_the_finished_stage1_and_rewrites_the_same_mixer()
    {
        byte[] routers = File.ReadAllBytes(Path.Combine(JointMixer.Value, "router.safetensors"));
        byte[] expert = File.ReadAllBytes(Path.Combine(JointMixer.Value, "experts", "math", "adapter_model.safetensors"));
        var again = CliRunner.Run("mixer", "train", "--model", Base.Value, "--data", Data.Value, "--out", JointMixer.Value,
            "--stage1-samples", "16", "--stage2-samples", "8", "--batch-size", "4", "--rank", "4", "--alpha", "8", "--stage1-lr", "1e-2", "--resume");
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Contains("skipping to stage 2", again.Stdout);
        Assert.Equal(routers, File.ReadAllBytes(Path.Combine(JointMixer.Value, "router.safetensors")));
        Assert.Equal(expert, File.ReadAllBytes(Path.Combine(JointMixer.Value, "experts", "math", "adapter_model.safetensors")));
        Assert.True(File.Exists(Path.Combine(JointMixer.Value, "routing_stats.json")));

        // Any changed setting or data is refused on resume, naming the flag and both values; nothing is overwritten.
        string otherData = WriteData("other-data.jsonl", Enumerable.Range(0, 12).SelectMany(i => new[]
        {
            Record(f: $"add {i} 2:", r: $" {i + 2}", task: "math"),
            Record(f: $"say {i}:", r: $" yo {i}", task: "chat"),
        }));
        foreach (var (changed, expected) in new (string[], string)[]
        {
            (["--rsl-alpha", "0.5"], "α 0.5"),
            (["--router-input", "token"], "--router-input was causal_mean and is now token"),
            (["--top-k", "1"], "--top-k was 2 and is now 1"),
            (["--temperature", "2"], "--temperature was 1 and is now 2"),
            (["--alpha", "16"], "--alpha was 8 and is now 16"),
            (["--dropout", "0.1"], "--dropout was 0.05 and is now 0.1"),
            (["--data", otherData], "--data was sha256:"),
        })
        {
            string[] args = ["mixer", "train", "--model", Base.Value, "--data", Data.Value, "--out", JointMixer.Value,
                "--stage1-samples", "16", "--stage2-samples", "8", "--batch-size", "4", "--rank", "4", "--alpha", "8", "--stage1-lr", "1e-2", "--resume"];
            int replace = Array.IndexOf(args, changed[0]);
            if (replace >= 0) args[replace + 1] = changed[1];
            else args = [.. args, .. changed];
            var refused = CliRunner.Run(args);
            Assert.Equal(1, refused.ExitCode);
            AssertOneLineError(refused, expected);
            Assert.Contains("resume with the settings and data of the first run", refused.Stderr);
        }
        Assert.Equal(routers, File.ReadAllBytes(Path.Combine(JointMixer.Value, "router.safetensors")));
    }

    [Fact]
    public void Plug_and_play_mixes_existing_adapters_and_trains_only_the_routers()
    {
        string dir = Path.Combine(Root, "plug");
        Succeeds(dir, "mixer", "train", "--model", Base.Value, "--data", Data.Value, "--out", dir,
            "--experts", $"a={AdapterA.Value},b={AdapterB.Value}", "--stage2-samples", "8", "--batch-size", "4", "--top-k", "1");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "mixer_config.json")))!;
        Assert.Equal("plug_and_play", config["training"]!["paradigm"]!.GetValue<string>());
        Assert.Equal(1, config["top_k"]!.GetValue<int>());
        Assert.False(Directory.Exists(dir + "-training/stage1"));
        // The experts are the adapters, unchanged: PEFT folders with their own ranks and targets.
        using (var b = PeftAdapter.Load(Path.Combine(dir, "experts", "b")))
        using (var original = PeftAdapter.Load(AdapterB.Value))
        {
            Assert.Equal(2, b.Config.R);
            Assert.Equal(original.Modules.Keys, b.Modules.Keys);
            foreach (var (module, w) in original.Modules)
                Assert.True(w.B.allclose(b.Modules[module].B));
        }
        using (var routers = SafeTensorsFile.Open(Path.Combine(dir, "router.safetensors")))
            Assert.True(routers.Read("model.layers.0.router.weight").abs().max().item<float>() > 0); // trained away from zero
    }

    [Fact]
    public void Plug_and_play_defaults_supervise_standardised_causal_mean_routers_and_diagnose_measures_them()
    {
        // Experts named like the data's tasks: the default preset supervises the routers towards them.
        string dir = Path.Combine(Root, "plug-tasks");
        var train = CliRunner.Run("mixer", "train", "--model", Base.Value, "--data", Data.Value, "--out", dir,
            "--experts", $"math={AdapterA.Value},chat={AdapterB.Value}", "--stage2-samples", "8", "--batch-size", "4");
        Assert.True(train.ExitCode == 0, train.Stderr);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "mixer_config.json")))!;
        Assert.Equal("causal_mean", config["router_input"]!.GetValue<string>());
        Assert.Equal("standardize", config["router_input_norm"]!.GetValue<string>());
        Assert.Equal("sequence", config["routing_granularity"]!.GetValue<string>());
        Assert.Equal(1.0, config["training"]!["stage2"]!["router_supervision"]!.GetValue<double>());
        long hidden = JsonNode.Parse(File.ReadAllText(Path.Combine(Base.Value, "config.json")))!["hidden_size"]!.GetValue<long>();
        using (var routers = SafeTensorsFile.Open(Path.Combine(dir, "router.safetensors")))
        {
            Assert.Equal(new long[] { 2, 2 * hidden }, routers.Read("model.layers.0.router.weight").shape);
            Assert.True(routers.Read("model.layers.0.router.input_std").min().item<float>() > 0);
            Assert.Equal(2 * hidden, routers.Read("model.layers.3.router.input_mean").numel());
        }

        string json = Path.Combine(Root, "diagnosis.json");
        var diagnose = CliRunner.Run("mixer", "diagnose", dir, "--model", Base.Value, "--data", Data.Value, "--out", json);
        Assert.True(diagnose.ExitCode == 0, diagnose.Stderr);
        Assert.Contains("response loss", diagnose.Stdout);
        var result = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal(24, result["samples"]!.GetValue<int>());
        Assert.Equal(4, result["layers"]!.AsArray().Count);
        foreach (var layer in result["layers"]!.AsArray())
            foreach (string key in new[] { "prompt_consistency", "response_consistency", "probe_last_prompt", "probe_response" })
                Assert.InRange(layer![key]!.GetValue<double>(), 0.0, 1.0);
        Assert.True(File.Exists(Path.ChangeExtension(json, ".png")));

        // The paper preset: token routers of the hidden size, nothing standardised, no supervision.
        string paper = Path.Combine(Root, "plug-paper");
        Succeeds(paper, "mixer", "train", "--model", Base.Value, "--data", Data.Value, "--out", paper, "--preset", "paper",
            "--experts", $"math={AdapterA.Value},chat={AdapterB.Value}", "--stage2-samples", "8", "--batch-size", "4");
        var paperConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(paper, "mixer_config.json")))!;
        Assert.Equal("token", paperConfig["router_input"]!.GetValue<string>());
        Assert.Equal(0.0, paperConfig["training"]!["stage2"]!["router_supervision"]!.GetValue<double>());
        using (var routers = SafeTensorsFile.Open(Path.Combine(paper, "router.safetensors")))
        {
            Assert.Equal(new long[] { 2, hidden }, routers.Read("model.layers.0.router.weight").shape);
            Assert.False(routers.Contains("model.layers.0.router.input_mean"));
        }

        // Experts that no task names: supervision is switched off with a note, not an error.
        string unnamed = Path.Combine(Root, "plug-unnamed");
        var note = CliRunner.Run("mixer", "train", "--model", Base.Value, "--data", Data.Value, "--out", unnamed,
            "--experts", $"a={AdapterA.Value},b={AdapterB.Value}", "--stage2-samples", "8", "--batch-size", "4", "--routing-granularity", "sequence");
        Assert.True(note.ExitCode == 0, note.Stderr);
        Assert.Contains("router supervision: off", note.Stdout);

        // Data without prompts: the default falls back to per-token routing and says so.
        string text = WriteData("text-tasks.jsonl", ["{\"text\": \"add 1 1: 2\", \"task\": \"math\"}", "{\"text\": \"say 1: hi\", \"task\": \"chat\"}"]);
        string tokenDir = Path.Combine(Root, "plug-text");
        var fallback = CliRunner.Run("mixer", "train", "--model", Base.Value, "--data", text, "--out", tokenDir,
            "--experts", $"math={AdapterA.Value},chat={AdapterB.Value}", "--stage2-samples", "8", "--batch-size", "4");
        Assert.True(fallback.ExitCode == 0, fallback.Stderr);
        Assert.Contains("routing granularity: token", fallback.Stdout);
        Assert.Equal("token", JsonNode.Parse(File.ReadAllText(Path.Combine(tokenDir, "mixer_config.json")))!["routing_granularity"]!.GetValue<string>());
    }

    [Fact]
    public void Bad_input_is_a_one_line_error_and_leaves_no_output_folder()
    {
        string bad = WriteData("bad.jsonl", [Record(f: "p", r: " r", task: "math"), "{\"prompt\": \"no answer\", \"task\": \"math\"}"]);
        string notJson = WriteData("notjson.jsonl", [Record(f: "p", r: " r", task: "math"), Record(f: "q", r: " s", task: "math"), "{oops"]);
        string fixtureMixer = Path.Combine(TestPaths.Fixtures, "mixers", "tiny-llama-mixer");
        string textData = WriteData("textonly.jsonl", ["{\"text\": \"a b c\", \"task\": \"math\"}", "{\"text\": \"d e f\", \"task\": \"chat\"}"]);
        var cases = new (string[] Args, string Message)[]
        {
            (["lora", "train", "--rank", "0"], "--rank must be at least 1"),
            (["lora", "train", "--targets", "q_proj,foo"], "unknown module 'foo'"),
            (["lora", "train", "--data", Path.Combine(Root, "missing.jsonl")], "missing.jsonl does not exist"),
            (["lora", "train", "--data", bad], "bad.jsonl:2: needs \"response\""),
            (["lora", "train", "--data", notJson], "notjson.jsonl:3: not valid JSON"),
            (["mixer", "train", "--tasks", "math"], "data.jsonl:2: unknown task \"chat\""),
            (["mixer", "train", "--tasks", "math,chat,code"], "task \"code\" has no records"),
            (["mixer", "train", "--top-k", "3"], "top-k must be between 1 and the number of experts (2), got 3"),
            (["mixer", "train", "--experts", $"a={AdapterA.Value},b={Base.Value}"], "is not a PEFT LoRA adapter"),
            (["mixer", "train", "--experts", $"a={AdapterA.Value},b={AdapterB.Value}", "--router-supervision", "1"], "router supervision needs training lines whose \"task\" names an expert"),
            (["mixer", "train", "--experts", $"a={AdapterA.Value},b={AdapterB.Value}", "--routing-granularity", "sequence", "--data", textData], "textonly.jsonl:1: sequence routing decides at the end of the prompt"),
            (["mixer", "train", "--experts", $"a={AdapterA.Value},b={AdapterB.Value}", "--router-scope", "projection"], "add --router-input token"),
            (["mixer", "train", "--experts", $"a={AdapterA.Value},b={AdapterB.Value}", "--router-supervision", "-1"], "--router-supervision must be a number"),
        };
        foreach (var (args, message) in cases)
        {
            string output = Path.Combine(Root, "failed-" + Guid.NewGuid().ToString("N")[..6]);
            var full = args.Concat(args.Contains("--data") ? [] : ["--data", Data.Value]).Concat(["--model", Base.Value, "--out", output]).ToArray();
            AssertOneLineError(CliRunner.Run(full), message);
            Assert.False(Directory.Exists(output), string.Join(' ', args) + " left " + output);
            Assert.False(Directory.Exists(output + "-training"), string.Join(' ', args) + " left " + output + "-training");
        }

        AssertOneLineError(CliRunner.Run("generate", "--model", Base.Value, "--mixer", JointMixer.Value, "--adapter", AdapterA.Value, "--prompt", "x"), "not both");
        AssertOneLineError(CliRunner.Run("generate", "--model", Base.Value, "--adapter", Path.Combine(fixtureMixer, "experts", "alpha"), "--prompt", "x"),
            "use an adapter trained for this base model");
        AssertOneLineError(CliRunner.Run("logits", "--model", Base.Value, "--mixer", fixtureMixer, "--ids", "1,5", "--out", Path.Combine(Root, "x.npy")),
            "was trained for another base model");
        AssertOneLineError(CliRunner.Run("logits", "--model", Base.Value, "--mixer", JointMixer.Value, "--top-k-experts", "3", "--ids", "1,5", "--out", Path.Combine(Root, "x.npy")),
            "--top-k-experts");

        AssertOneLineError(CliRunner.Run("mixer", "diagnose", JointMixer.Value, "--model", Base.Value, "--data", textData), "needs prompt/response lines whose \"task\" names an expert");

        var parse = CliRunner.Run("mixer", "train", "--model", Base.Value, "--data", Data.Value, "--out", Path.Combine(Root, "p"), "--routing", "hard");
        Assert.Equal(2, parse.ExitCode);
        Assert.Equal(2, parse.Stderr.Trim().Split('\n').Length); // the problem, then "run 'loramixer mixer train --help'"
        Assert.Contains("loramixer mixer train --help", parse.Stderr);
    }

    private static float[] Logits(params string[] extra)
    {
        string output = Path.Combine(Root, Guid.NewGuid().ToString("N") + ".npy");
        var outcome = CliRunner.Run(["logits", "--model", Base.Value, "--text", "add 3 1: 4", "--out", output, .. extra]);
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        return NpyFile.ReadFloat32(output).Data;
    }

    private static string Succeeds(string result, params string[] args)
    {
        var outcome = CliRunner.Run(args);
        Assert.True(outcome.ExitCode == 0, $"loramixer {string.Join(' ', args)} failed: {outcome.Stderr}");
        return result;
    }

    private static void AssertOneLineError(CliRunner.Outcome outcome, string mustContain)
    {
        Assert.True(outcome.ExitCode == 1, $"exit {outcome.ExitCode}, expected 1; stderr: {outcome.Stderr}");
        string line = Assert.Single(outcome.Stderr.Trim().Split('\n'));
        Assert.StartsWith("error: ", line);
        Assert.Contains(mustContain, line);
    }

    private static string Record(string f, string r, string task) =>
        JsonSerializer.Serialize(new Dictionary<string, string> { ["prompt"] = f, ["response"] = r, ["task"] = task });

    private static string WriteData(string name, IEnumerable<string> lines)
    {
        string path = Path.Combine(Root, name);
        File.WriteAllLines(path, lines);
        return path;
    }
}
