using System.Text.Json.Nodes;
using LoraMixer.Errors;
using LoraMixer.Models;
using LoraMixer.Models.Mamba;

namespace LoraMixer.Tests.Models;

public sealed class MambaConfigTests
{
    private static string TinyMamba => Path.Combine(TestPaths.Fixtures, "models", "tiny-mamba");

    private static string CopyWithConfig(string source, Action<JsonObject> edit)
    {
        string dir = TestPaths.NewTempDir();
        foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        var json = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
        edit(json);
        File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
        return dir;
    }

    [Fact]
    public void Reads_the_fields_of_both_families_with_hf_defaults()
    {
        var mamba = MambaConfig.Load(TinyMamba);
        Assert.Equal(("mamba", 64, 8, 2, 128, 4, 4), (mamba.ModelType, mamba.HiddenSize, mamba.StateSize, mamba.NumHiddenLayers, mamba.IntermediateSize, mamba.ConvKernel, mamba.TimeStepRank));
        Assert.True(mamba.TieWordEmbeddings && mamba.UseConvBias && !mamba.UseBias && !mamba.NormalizesBcDt);
        var falcon = MambaConfig.Load(Path.Combine(TestPaths.Fixtures, "models", "tiny-falcon-mamba"));
        Assert.Equal(("falcon_mamba", 16, 3, 8, 1e-6), (falcon.ModelType, falcon.StateSize, falcon.ConvKernel, falcon.TimeStepRank, falcon.MixerRmsEps));
        Assert.True(!falcon.TieWordEmbeddings && falcon.UseBias && falcon.NormalizesBcDt);

        var minimal = MambaConfig.FromJson(new JsonObject
        {
            ["model_type"] = "mamba", ["vocab_size"] = 10, ["hidden_size"] = 100, ["num_hidden_layers"] = 1,
        }, "config.json");
        Assert.Equal((7, 16, 4, 200, true, 1e-5), (minimal.TimeStepRank, minimal.StateSize, minimal.ConvKernel, minimal.IntermediateSize, minimal.TieWordEmbeddings, minimal.LayerNormEpsilon));
    }

    [Theory]
    [InlineData("mamba2", "Mamba2ForCausalLM")]
    [InlineData("jamba", "JambaForCausalLM")]
    public void Other_state_space_models_fail_with_the_supported_list(string modelType, string architecture)
    {
        string dir = CopyWithConfig(TinyMamba, json =>
        {
            json["model_type"] = modelType;
            json["architectures"] = new JsonArray(JsonValue.Create(architecture));
        });
        var error = Assert.Throws<ModelFormatException>(() => ModelLoader.LoadCausalLM(dir));
        Assert.Contains($"architecture '{architecture}' (model_type '{modelType}') is not supported yet", error.Message);
        Assert.Contains("mamba (MambaForCausalLM, FalconMambaForCausalLM)", error.Message);
        Assert.Contains("LlamaForCausalLM", error.Message);
        Assert.DoesNotContain("\n", error.Message);
    }

    [Fact]
    public void A_tensor_whose_shape_disagrees_with_the_config_is_named_with_both_shapes()
    {
        string dir = CopyWithConfig(TinyMamba, json => json["conv_kernel"] = 3);
        var error = Assert.Throws<ModelFormatException>(() => ModelLoader.LoadCausalLM(dir));
        Assert.Contains("'backbone.layers.0.mixer.conv1d.weight'", error.Message);
        Assert.Contains("[128, 1, 4]", error.Message);
        Assert.Contains("[128, 1, 3]", error.Message);
    }

    [Fact]
    public void An_untied_config_over_tied_weights_names_the_missing_lm_head()
    {
        string dir = CopyWithConfig(TinyMamba, json => json["tie_word_embeddings"] = false);
        var error = Assert.Throws<ModelFormatException>(() => MambaLoader.Load(dir));
        Assert.Contains("'lm_head.weight' is missing", error.Message);
    }

    [Fact]
    public void A_bad_time_step_rank_is_a_one_line_error()
    {
        var error = Assert.Throws<ModelFormatException>(() => MambaConfig.FromJson(new JsonObject
        {
            ["model_type"] = "mamba", ["vocab_size"] = 10, ["hidden_size"] = 100, ["num_hidden_layers"] = 1, ["time_step_rank"] = "big",
        }, "config.json"));
        Assert.Contains("time_step_rank", error.Message);
    }
}
