using LoraMixer.IO;
using LoraMixer.Tests.Models;
using LoraMixer.Tests.Training;

namespace LoraMixer.Tests.Cli;

public sealed class CliTests
{
    private static void AssertOneLineError(CliRunner.Outcome outcome, string mustContain)
    {
        Assert.NotEqual(0, outcome.ExitCode);
        Assert.Contains(mustContain, outcome.Stderr);
        Assert.DoesNotContain("   at ", outcome.Stderr); // no stack trace without --verbose
    }

    [Fact]
    public void An_unknown_flag_is_a_short_error_with_exit_code_2()
    {
        var outcome = CliRunner.Run("generate", "--model", "x", "--prompt", "y", "--frobnicate");
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("--frobnicate", outcome.Stderr);
        Assert.True(outcome.Stderr.Trim().Split('\n').Length <= 3, outcome.Stderr);
    }

    [Fact]
    public void A_missing_model_folder_is_one_line_naming_it()
    {
        var outcome = CliRunner.Run("generate", "--model", "/no/such/model", "--prompt", "hi");
        AssertOneLineError(outcome, "/no/such/model");
        Assert.Single(outcome.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public void Generate_runs_an_int8_model_and_names_the_choices_for_a_bad_quantize_value()
    {
        var fp32 = CliRunner.Run("generate", "--model", TinyDefaultModel.Path_, "--prompt", "ab", "--max-tokens", "6");
        var int8 = CliRunner.Run("generate", "--model", TinyDefaultModel.Path_, "--prompt", "ab", "--max-tokens", "6", "--quantize", "int8");
        Assert.True(int8.ExitCode == 0, int8.Stderr);
        Assert.Contains("int8: ", int8.Stderr);
        Assert.StartsWith("ab", int8.Stdout);
        Assert.True(fp32.ExitCode == 0, fp32.Stderr);
        Assert.DoesNotContain("int8", fp32.Stderr);

        var bad = CliRunner.Run("generate", "--model", TinyDefaultModel.Path_, "--prompt", "ab", "--quantize", "int4");
        AssertOneLineError(bad, "--quantize: 'int4' is not supported; the one choice is int8");
    }

    [Fact]
    public void Verbose_shows_the_stack_trace()
    {
        var outcome = CliRunner.Run("inspect", "/no/such/model", "--verbose");
        Assert.NotEqual(0, outcome.ExitCode);
        Assert.Contains("   at ", outcome.Stderr);
    }

    [Fact]
    public void Logits_writes_a_float32_npy_matching_the_reference()
    {
        var fixture = ReferenceFixture.Load("tiny-qwen2");
        var (ids, expected) = fixture.Cases.First(c => c.Ids.Length == 7);
        string output = Path.Combine(TestPaths.NewTempDir(), "logits.npy");
        var outcome = CliRunner.Run("logits", "--model", fixture.Dir, "--ids", string.Join(',', ids), "--out", output);
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        var (data, shape) = NpyFile.ReadFloat32(output);
        Assert.Equal(new long[] { ids.Length, expected[0].Length }, shape);
        for (int t = 0; t < ids.Length; t++)
            for (int v = 0; v < expected[t].Length; v++)
                Assert.True(Math.Abs(data[t * expected[t].Length + v] - expected[t][v]) < 1e-4f);
    }

    [Fact]
    public void Logits_rejects_ids_outside_the_vocabulary()
    {
        var outcome = CliRunner.Run("logits", "--model", ReferenceFixture.Load("tiny-llama").Dir, "--ids", "1,999", "--out", Path.Combine(TestPaths.NewTempDir(), "x.npy"));
        AssertOneLineError(outcome, "999");
    }

    [Fact]
    public void Inspect_reports_the_architecture_and_parameter_count()
    {
        var outcome = CliRunner.Run("inspect", ReferenceFixture.Load("tiny-qwen2").Dir);
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        Assert.Contains("Qwen2ForCausalLM", outcome.Stdout);
        Assert.Contains("tie_word_embeddings", outcome.Stdout);
    }

    [SkippableFact]
    public void Tokenize_prints_the_ids_of_the_llama2_tokenizer_as_json()
    {
        string model = TestPaths.RequireShared("tokenizers", "llama2", "tokenizer.model");
        var outcome = CliRunner.Run("tokenize", "--tokenizer", model, "--text", "Hello world");
        Assert.True(outcome.ExitCode == 0, outcome.Stderr);
        Assert.Equal("[1,15043,3186]", outcome.Stdout.Trim()); // the ids in the issue's own example
    }
}
