using System.Text.Json.Nodes;
using LoraMixer.Errors;
using LoraMixer.IO;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Models;

/// <summary>Config values are range-checked and weights must match the config exactly, each failure one line naming the culprit.</summary>
public sealed class ModelValidationTests
{
    private static string Fixture(string name) => Path.Combine(TestPaths.Fixtures, "models", name);

    private static JsonObject ConfigOf(string name) =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Fixture(name), "config.json")))!;

    /// <summary>A copy of a fixture as one float32 model.safetensors, its tensors and config edited.</summary>
    private static string Rewrite(string name, Func<List<KeyValuePair<string, Tensor>>, IEnumerable<KeyValuePair<string, Tensor>>>? editWeights = null,
        Action<JsonObject>? editConfig = null)
    {
        string dir = TestPaths.NewTempDir();
        var config = ConfigOf(name);
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        using var scope = NewDisposeScope();
        using var checkpoint = SafeTensorsCheckpoint.Open(Fixture(name));
        var tensors = checkpoint.Names.Order(StringComparer.Ordinal)
            .Select(n => new KeyValuePair<string, Tensor>(n, checkpoint.Read(n).to(float32))).ToList();
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), editWeights is null ? tensors : editWeights(tensors));
        return dir;
    }

    private static void AssertOneLine(string message, params string[] parts)
    {
        Assert.DoesNotContain("\n", message);
        foreach (string part in parts) Assert.Contains(part, message);
    }

    [Theory]
    [InlineData("num_attention_heads", 0)]
    [InlineData("num_key_value_heads", 0)]
    [InlineData("hidden_size", 0)]
    [InlineData("num_hidden_layers", 0)]
    [InlineData("vocab_size", 0)]
    [InlineData("intermediate_size", 0)]
    [InlineData("head_dim", 0)]
    [InlineData("max_position_embeddings", 0)]
    [InlineData("rope_theta", 0)]
    [InlineData("rope_theta", -10000)]
    [InlineData("rms_norm_eps", 0)]
    public void Llama_values_out_of_range_name_the_field_and_value(string field, double value)
    {
        var json = ConfigOf("tiny-llama");
        json[field] = value;
        var e = Assert.Throws<ModelFormatException>(() => LlamaConfig.FromJson(json, "config.json"));
        AssertOneLine(e.Message, "config.json", field, $" is {value}", "positive");
    }

    [Fact]
    public void Key_value_heads_must_divide_the_attention_heads()
    {
        var json = ConfigOf("tiny-llama");
        json["num_key_value_heads"] = 3;
        var e = Assert.Throws<ModelFormatException>(() => LlamaConfig.FromJson(json, "config.json"));
        AssertOneLine(e.Message, "num_key_value_heads 3", "num_attention_heads 4");
    }

    [Theory]
    [InlineData("""{"rope_type": "yarn", "factor": 2.0}""", "'yarn' is not supported", "linear, llama3")]
    [InlineData("""{"factor": 2.0}""", "no 'rope_type'")]
    [InlineData("""{"type": "linear"}""", "'rope_scaling.factor' is missing")]
    [InlineData("""{"type": "linear", "factor": 0}""", "rope_scaling.factor is 0")]
    [InlineData("""{"rope_type": "llama3", "factor": 8.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}""", "'rope_scaling.low_freq_factor' is missing")]
    [InlineData("""{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0, "original_max_position_embeddings": 32}""", "greater than low_freq_factor")]
    [InlineData("""{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}""", "original_max_position_embeddings' is missing")]
    [InlineData("\"linear\"", "field 'rope_scaling' must be an object or null", "got \"linear\"")]
    [InlineData("""{"type": "linear", "factor": "two"}""", "field 'rope_scaling.factor' must be a number")]
    public void Malformed_rope_scaling_is_refused(string scaling, params string[] parts)
    {
        var json = ConfigOf("tiny-llama");
        json["rope_scaling"] = JsonNode.Parse(scaling);
        var e = Assert.Throws<ModelFormatException>(() => LlamaConfig.FromJson(json, "config.json"));
        AssertOneLine(e.Message, ["config.json", .. parts]);
    }

    [Fact]
    public void Default_rope_type_means_no_scaling_and_eos_may_be_a_list()
    {
        var json = ConfigOf("tiny-llama");
        json["rope_scaling"] = JsonNode.Parse("""{"rope_type": "default"}""");
        json["eos_token_id"] = new JsonArray(2, 3);
        var config = LlamaConfig.FromJson(json, "config.json");
        Assert.Null(config.RopeScaling);
        Assert.Equal(new[] { 2, 3 }, config.EosTokenIds);
        json["rope_scaling"] = null;
        json["max_position_embeddings"] = 256.0; // Python may write whole numbers as floats
        Assert.Null(LlamaConfig.FromJson(json, "config.json").RopeScaling);
    }

    [Theory]
    [InlineData("hidden_size", "\"big\"", "field 'hidden_size' must be a non-negative integer, got \"big\"")]
    [InlineData("hidden_size", "64.5", "field 'hidden_size' must be a non-negative integer, got 64.5")]
    [InlineData("num_attention_heads", "-4", "field 'num_attention_heads' must be a non-negative integer, got -4")]
    [InlineData("tie_word_embeddings", "\"yes\"", "field 'tie_word_embeddings' must be true or false")]
    [InlineData("eos_token_id", "[2, \"x\"]", "field 'eos_token_id' must be an integer or a list of integers")]
    [InlineData("architectures", "\"LlamaForCausalLM\"", "field 'architectures' must be a list of strings")]
    public void A_field_of_the_wrong_type_is_one_line_naming_it(string field, string value, string expected)
    {
        var json = ConfigOf("tiny-llama");
        json[field] = JsonNode.Parse(value);
        var e = Assert.Throws<ModelFormatException>(() => LlamaConfig.FromJson(json, "config.json"));
        AssertOneLine(e.Message, "config.json: " + expected);
    }

    [Fact]
    public void Malformed_json_is_one_line_naming_the_file_and_position()
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\n  \"hidden_size\": 64\n  \"vocab_size\": 10\n}");
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.LoadCausalLM(dir));
        AssertOneLine(e.Message, Path.Combine(dir, "config.json"), "invalid JSON at line 3");
        File.WriteAllText(Path.Combine(dir, "config.json"), "[1, 2]");
        AssertOneLine(Assert.Throws<ModelFormatException>(() => ModelLoader.LoadCausalLM(dir)).Message, "expected a JSON object");
    }

    [Theory]
    [InlineData("state_size", "0", "state_size is 0")]
    [InlineData("conv_kernel", "0", "conv_kernel is 0")]
    [InlineData("num_hidden_layers", "0", "num_hidden_layers is 0")]
    [InlineData("vocab_size", "0", "vocab_size is 0")]
    [InlineData("hidden_size", "0", "hidden_size is 0")]
    [InlineData("time_step_rank", "0", "time_step_rank is 0")]
    [InlineData("time_step_rank", "\"big\"", "time_step_rank is \"big\"")]
    [InlineData("expand", "0", "expand is 0")]
    [InlineData("expand", "1.5", "expand is 1.5")]
    [InlineData("intermediate_size", "100", "intermediate_size 100 disagrees with expand 2 × hidden_size 64 = 128")]
    [InlineData("layer_norm_epsilon", "0", "layer_norm_epsilon is 0")]
    [InlineData("mixer_rms_eps", "-1", "mixer_rms_eps is -1")]
    public void Mamba_values_out_of_range_name_the_field_and_value(string field, string value, string expected)
    {
        var json = ConfigOf("tiny-mamba");
        json[field] = JsonNode.Parse(value);
        var e = Assert.Throws<ModelFormatException>(() => MambaConfig.FromJson(json, "config.json"));
        AssertOneLine(e.Message, "config.json: " + expected);
    }

    [Fact]
    public void Mamba_intermediate_size_equal_to_expand_times_hidden_is_accepted()
    {
        var json = ConfigOf("tiny-mamba");
        json["intermediate_size"] = 128;
        Assert.Equal(128, MambaConfig.FromJson(json, "config.json").IntermediateSize);
    }

    [Fact]
    public void Fewer_layers_in_the_config_than_in_the_weights_name_the_extra_tensors()
    {
        string dir = Rewrite("tiny-llama", editConfig: json => json["num_hidden_layers"] = 1);
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.LoadCausalLM(dir));
        AssertOneLine(e.Message, "'model.layers.1.", "more", "not part of a model with this config.json", "num_hidden_layers");
        string mamba = Rewrite("tiny-mamba", editConfig: json => json["num_hidden_layers"] = 1);
        AssertOneLine(Assert.Throws<ModelFormatException>(() => ModelLoader.LoadCausalLM(mamba)).Message, "'backbone.layers.1.");
    }

    [Fact]
    public void More_layers_in_the_config_than_in_the_weights_name_the_missing_tensors()
    {
        string dir = Rewrite("tiny-llama", editConfig: json => json["num_hidden_layers"] = 3);
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.LoadCausalLM(dir));
        AssertOneLine(e.Message, "'model.layers.2.", "are missing from the weights");
    }

    [Fact]
    public void An_unknown_extra_tensor_is_named()
    {
        string dir = Rewrite("tiny-qwen2", tensors => tensors.Append(new("model.extra.weight", zeros(2, 2))));
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.LoadCausalLM(dir));
        AssertOneLine(e.Message, "tensor 'model.extra.weight' is not part of a model with this config.json");
    }

    [Fact]
    public void Rotary_buffers_and_a_tied_head_that_transformers_ignores_still_load()
    {
        string qwen = Rewrite("tiny-qwen2", tensors => tensors
            .Append(new("model.layers.0.self_attn.rotary_emb.inv_freq", ones(8)))
            .Append(new("lm_head.weight", tensors.Single(t => t.Key == "model.embed_tokens.weight").Value)));
        Assert.True(LlamaConfig.Load(qwen).TieWordEmbeddings);
        using (var model = ModelLoader.LoadCausalLM(qwen)) Assert.IsType<LlamaForCausalLM>(model);
        string mamba = Rewrite("tiny-mamba", tensors => tensors
            .Append(new("lm_head.weight", tensors.Single(t => t.Key == "backbone.embeddings.weight").Value)));
        using (var model = ModelLoader.LoadCausalLM(mamba)) Assert.IsType<MambaForCausalLM>(model);
    }

    [Theory]
    [InlineData("tiny-llama", "model.norm.weight", float.NaN)]
    [InlineData("tiny-qwen2", "model.layers.1.self_attn.q_proj.bias", float.PositiveInfinity)]
    [InlineData("tiny-mamba", "backbone.layers.0.mixer.A_log", float.NegativeInfinity)]
    public void Non_finite_weights_name_the_tensor(string fixture, string tensor, float bad)
    {
        string dir = Rewrite(fixture, tensors => tensors.Select(t =>
        {
            if (t.Key != tensor) return t;
            var copy = t.Value.clone();
            copy.view(-1)[0] = bad;
            return new KeyValuePair<string, Tensor>(t.Key, copy);
        }));
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.LoadCausalLM(dir));
        AssertOneLine(e.Message, $"tensor '{tensor}' holds NaN or infinite values");
    }

    [Theory]
    [InlineData("tiny-llama", "llama", "q_proj,k_proj,v_proj,o_proj")]
    [InlineData("tiny-mistral", "llama", "q_proj,k_proj,v_proj,o_proj")]
    [InlineData("tiny-qwen2", "llama", "q_proj,k_proj,v_proj,o_proj")]
    [InlineData("tiny-mamba", "mamba", "in_proj,out_proj")]
    [InlineData("tiny-falcon-mamba", "mamba", "in_proj,out_proj")]
    public void The_family_comes_from_the_config_and_knows_its_defaults(string fixture, string family, string targets)
    {
        var chosen = ModelFamilies.ForModelFolder(Fixture(fixture));
        Assert.Equal(family, chosen.Name);
        Assert.Equal(targets, string.Join(",", chosen.DefaultTargets));
        using var model = chosen.Load(Fixture(fixture));
        Assert.Same(chosen, model.Family);
        Assert.Equal(targets.Split(',').Length * 2, chosen.FindLinears(model, n => chosen.DefaultTargets.Contains(n[(n.LastIndexOf('.') + 1)..])).Count);
        using var checkpoint = SafeTensorsCheckpoint.Open(Fixture(fixture));
        Assert.Contains(chosen.Inspect(Fixture(fixture), checkpoint), row => row.Field == "architecture" && row.Value == chosen.Describe(model).Architecture);
    }

    [Fact]
    public void An_unknown_family_lists_every_supported_architecture()
    {
        string dir = Rewrite("tiny-llama", editConfig: json =>
        {
            json["architectures"] = new JsonArray("GPTNeoXForCausalLM");
            json["model_type"] = "gpt_neox";
        });
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.LoadCausalLM(dir));
        AssertOneLine(e.Message, "'GPTNeoXForCausalLM'", "not supported yet");
        foreach (var architecture in ModelFamilies.All.SelectMany(f => f.Architectures)) Assert.Contains(architecture, e.Message);
    }

    [Fact]
    public void Mamba_refuses_an_mlp_router_with_a_clear_message()
    {
        using var model = ModelLoader.LoadCausalLM(Fixture("tiny-mamba"));
        using var router = TorchSharp.torch.nn.Linear(64, 2);
        var e = Assert.Throws<NotSupportedException>(() => ModelStructure.AttachMlpRouter(model, 0, router, _ => { }));
        AssertOneLine(e.Message, "MambaForCausalLM", "no MLP");
    }
}
