using System.Text.Json.Nodes;
using LoraMixer.Models.Llama;
using LoraMixer.Errors;
using LoraMixer.IO;
using LoraMixer.Models;
using LoraMixer.Models.Modules;

namespace LoraMixer.Tests.Models;

public sealed class LlamaConfigTests
{
    private static JsonObject TinyLlamaJson() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "models", "tiny-llama", "config.json")))!;

    private static string CopyFixture(string name, Action<JsonObject>? edit = null)
    {
        string dir = TestPaths.NewTempDir();
        foreach (var file in Directory.GetFiles(Path.Combine(TestPaths.Fixtures, "models", name)))
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        if (edit is not null)
        {
            var json = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
            edit(json);
            File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
        }
        return dir;
    }

    [Fact]
    public void Unknown_architecture_error_lists_the_supported_ones()
    {
        var json = TinyLlamaJson();
        json["architectures"] = new JsonArray("GPTNeoXForCausalLM");
        var e = Assert.Throws<ModelFormatException>(() => LlamaConfig.FromJson(json, "config.json"));
        Assert.Contains("GPTNeoXForCausalLM", e.Message);
        foreach (var supported in LlamaConfig.SupportedArchitectures) Assert.Contains(supported, e.Message);
    }

    [Fact]
    public void A_missing_required_field_is_named()
    {
        var json = TinyLlamaJson();
        json.Remove("hidden_size");
        var e = Assert.Throws<ModelFormatException>(() => LlamaConfig.FromJson(json, "config.json"));
        Assert.Contains("hidden_size", e.Message);
    }

    [Fact]
    public void Defaults_follow_transformers()
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"), ["vocab_size"] = 10, ["hidden_size"] = 8,
            ["intermediate_size"] = 16, ["num_hidden_layers"] = 1, ["num_attention_heads"] = 2,
        };
        var c = LlamaConfig.FromJson(json, "config.json");
        Assert.Equal(2, c.NumKeyValueHeads);
        Assert.Equal(4, c.HeadDim);
        Assert.Equal(10000.0, c.RopeTheta);
        Assert.False(c.TieWordEmbeddings);
        Assert.False(c.QkvBias);
        Assert.Null(c.RopeScaling);
    }

    [Fact]
    public void Qwen2_has_qkv_bias_and_explicit_head_dim_is_honoured()
    {
        var qwen = LlamaConfig.Load(Path.Combine(TestPaths.Fixtures, "models", "tiny-qwen2"));
        Assert.True(qwen.QkvBias);
        Assert.False(qwen.OutputBias);
        Assert.True(qwen.TieWordEmbeddings);
        var mistral = LlamaConfig.Load(Path.Combine(TestPaths.Fixtures, "models", "tiny-mistral"));
        Assert.Equal(24, mistral.HeadDim);
        Assert.Equal("linear", mistral.RopeScaling!.Type);
    }

    [Fact]
    public void Weights_that_disagree_with_the_config_name_the_tensor_and_both_shapes()
    {
        string dir = CopyFixture("tiny-mistral", json => json["intermediate_size"] = 100);
        var e = Assert.Throws<ModelFormatException>(() => LlamaLoader.Load(dir));
        Assert.Contains("mlp.gate_proj.weight", e.Message);
        Assert.Contains("[128, 64]", e.Message);
        Assert.Contains("[100, 64]", e.Message);
    }

    [Fact]
    public void Missing_folder_and_missing_config_say_so()
    {
        Assert.Contains("does not exist", Assert.Throws<ModelFormatException>(() => LlamaLoader.Load("/nonexistent/model")).Message);
        string empty = TestPaths.NewTempDir();
        Assert.Contains("config.json", Assert.Throws<ModelFormatException>(() => LlamaLoader.Load(empty)).Message);
    }

    [Fact]
    public void Parameter_count_equals_the_sum_of_the_checkpoint_tensors()
    {
        foreach (string name in ReferenceFixture.Names)
        {
            string dir = Path.Combine(TestPaths.Fixtures, "models", name);
            var config = LlamaConfig.Load(dir);
            using var checkpoint = SafeTensorsCheckpoint.Open(dir);
            long total = checkpoint.Names.Sum(n => checkpoint.Shape(n).Aggregate(1L, (a, b) => a * b));
            Assert.Equal(total, config.ParameterCount());
        }
    }

    [Fact]
    public void Llama3_rope_scaling_keeps_high_frequencies_and_slows_low_ones()
    {
        // Worked by hand: head_dim 16, θ = 10000 → inv_freq_i = 10000^(-i/8); original context 32,
        // low/high frequency factors 1 and 4 → wavelengths above 32 are divided by 8, below 8 kept.
        var scaling = new RopeScaling("llama3", 8.0, 1.0, 4.0, 32);
        var plain = RotaryEmbedding.InverseFrequencies(16, 10000, null);
        var scaled = RotaryEmbedding.InverseFrequencies(16, 10000, scaling);
        Assert.Equal(1.0f, plain[0]);
        Assert.Equal(plain[0], scaled[0]);                       // wavelength 2π < 8: unchanged
        for (int i = 2; i < 8; i++) Assert.Equal(plain[i] / 8, scaled[i], 6); // wavelength > 32
        double wavelen = 2 * Math.PI / plain[1];                 // ≈ 19.87: in the blend
        double smooth = (32 / wavelen - 1) / (4 - 1);
        Assert.Equal((1 - smooth) * plain[1] / 8 + smooth * plain[1], scaled[1], 5);
    }
}
