using System.Text.Json.Nodes;
using LoraMixer.Errors;
using LoraMixer.Lora;

namespace LoraMixer.Tests.Lora;

public sealed class LoraConfigTests
{
    private const string Q0 = "model.layers.0.self_attn.q_proj", Q1 = "model.layers.1.self_attn.q_proj";
    private const string K0 = "model.layers.0.self_attn.k_proj", V0 = "model.layers.0.self_attn.v_proj";

    private static LoraConfig Parse(string json) => LoraConfig.FromJson(JsonNode.Parse(json)!.AsObject(), "adapter_config.json");

    private static string Json(string fields) =>
        "{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, " + fields + "}";

    [Fact]
    public void Target_list_matches_a_module_by_name_or_dot_suffix()
    {
        var config = Parse(Json("\"target_modules\": [\"q_proj\", \"v_proj\"]"));
        Assert.True(config.IsTarget(Q0));
        Assert.True(config.IsTarget(V0));
        Assert.True(config.IsTarget("q_proj"));
        Assert.False(config.IsTarget(K0));
        Assert.False(config.IsTarget("model.layers.0.self_attn.xq_proj")); // suffix without the dot
        Assert.False(config.IsTarget(Q0 + ".lora_A"));
        Assert.Equal(new[] { "q_proj", "v_proj" }, config.TargetModules);
        Assert.Null(config.TargetModulesRegex);
    }

    [Fact]
    public void Target_regex_string_must_match_the_whole_module_name()
    {
        var config = Parse(Json("\"target_modules\": \".*\\\\.(q_proj|v_proj)\""));
        Assert.Equal(@".*\.(q_proj|v_proj)", config.TargetModulesRegex);
        Assert.Empty(config.TargetModules);
        Assert.True(config.IsTarget(Q0));
        Assert.True(config.IsTarget(V0));
        Assert.False(config.IsTarget(K0));
        Assert.False(config.IsTarget(Q0 + "x"));   // fullmatch, not search
        Assert.False(config.IsTarget("q_proj"));    // the regex needs a dot before it

        var bare = Parse(Json("\"target_modules\": \"q_proj\""));
        Assert.True(bare.IsTarget("q_proj"));
        Assert.False(bare.IsTarget(Q0));           // unlike a list, a string is not a suffix match
    }

    [Fact]
    public void Rank_pattern_takes_the_first_key_that_matches_a_dot_separated_suffix()
    {
        var specificFirst = Parse(Json("\"target_modules\": [\"q_proj\", \"k_proj\"], \"rank_pattern\": {\"layers.0.self_attn.q_proj\": 16, \"q_proj\": 2}"));
        Assert.Equal(16, specificFirst.RankFor(Q0));
        Assert.Equal(2, specificFirst.RankFor(Q1));
        Assert.Equal(8, specificFirst.RankFor(K0));

        // PEFT walks the dict in insertion order: the general key listed first wins everywhere.
        var generalFirst = Parse(Json("\"target_modules\": [\"q_proj\"], \"rank_pattern\": {\"q_proj\": 2, \"layers.0.self_attn.q_proj\": 16}"));
        Assert.Equal(2, generalFirst.RankFor(Q0));
        Assert.Equal(new[] { "q_proj", "layers.0.self_attn.q_proj" }, generalFirst.RankPattern.Keys);

        // "proj" is not a whole trailing segment of "...q_proj"; "layers.1" does not reach the end.
        var partial = Parse(Json("\"target_modules\": [\"q_proj\"], \"rank_pattern\": {\"proj\": 3, \"layers.1\": 5}"));
        Assert.Equal(8, partial.RankFor(Q0));
        Assert.Equal(8, partial.RankFor(Q1));
    }

    [Fact]
    public void Alpha_pattern_overrides_alpha_and_the_scale()
    {
        var config = Parse(Json("\"target_modules\": [\"q_proj\", \"v_proj\"], \"alpha_pattern\": {\"v_proj\": 32}, \"rank_pattern\": {\"layers.1.self_attn.q_proj\": 4}"));
        Assert.Equal(32, config.AlphaFor(V0));
        Assert.Equal(16, config.AlphaFor(Q0));
        Assert.Equal(32.0 / 8, config.ScalingFor(V0));
        Assert.Equal(16.0 / 8, config.ScalingFor(Q0));
        Assert.Equal(16.0 / 4, config.ScalingFor(Q1)); // the rank from rank_pattern, alpha from lora_alpha
    }

    [Fact]
    public void Rslora_scales_by_alpha_over_the_square_root_of_the_rank()
    {
        var rs = Parse("{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"use_rslora\": true, \"target_modules\": [\"q_proj\"], \"rank_pattern\": {\"layers.1.self_attn.q_proj\": 16}}");
        Assert.True(rs.UseRslora);
        Assert.Equal(8 / 2.0, rs.ScalingFor(Q0));
        Assert.Equal(8 / 4.0, rs.ScalingFor(Q1));
        var plain = rs with { UseRslora = false };
        Assert.Equal(8 / 4.0, plain.ScalingFor(Q0));
    }

    [Fact]
    public void Reads_every_field_of_a_PEFT_config_and_ignores_unknown_ones()
    {
        var config = Parse("""
            {"alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M",
             "bias": "lora_only", "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true,
             "layers_pattern": null, "layers_to_transform": null, "loftq_config": {}, "lora_alpha": 32,
             "lora_dropout": 0.05, "megatron_config": null, "modules_to_save": null, "peft_type": "LORA", "r": 16,
             "rank_pattern": {}, "revision": null, "target_modules": ["v_proj", "q_proj"], "task_type": "CAUSAL_LM",
             "use_dora": false, "use_rslora": false, "something_new": [1, 2]}
            """);
        Assert.Equal(16, config.R);
        Assert.Equal(32, config.LoraAlpha);
        Assert.Equal(0.05, config.LoraDropout);
        Assert.Equal("lora_only", config.Bias);
        Assert.Equal("HuggingFaceTB/SmolLM2-135M", config.BaseModelNameOrPath);
        Assert.Equal("CAUSAL_LM", config.TaskType);
        Assert.Equal("LORA", config.PeftType);
        Assert.Equal(new[] { "v_proj", "q_proj" }, config.TargetModules);
        Assert.Empty(config.RankPattern);
    }

    [Theory]
    [InlineData("{\"peft_type\": \"IA3\", \"r\": 8, \"lora_alpha\": 16, \"target_modules\": [\"q_proj\"]}", "peft_type is 'IA3'", "only LORA")]
    [InlineData("{\"r\": 8, \"lora_alpha\": 16, \"target_modules\": [\"q_proj\"]}", "'peft_type' is missing")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, \"fan_in_fan_out\": true, \"target_modules\": [\"q_proj\"]}", "fan_in_fan_out", "not supported")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 0, \"lora_alpha\": 16, \"target_modules\": [\"q_proj\"]}", "rank must be ≥ 1")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, \"rank_pattern\": {\"q_proj\": 0}, \"target_modules\": [\"q_proj\"]}", "rank_pattern 'q_proj'", "rank must be ≥ 1")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 0, \"target_modules\": [\"q_proj\"]}", "lora_alpha is 0", "> 0")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16}", "'target_modules' is missing")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, \"target_modules\": []}", "target_modules is empty")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, \"target_modules\": \"(q_proj\"}", "'(q_proj' is not a valid regular expression")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, \"bias\": \"some\", \"target_modules\": [\"q_proj\"]}", "bias is 'some'", "none, all or lora_only")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 8.5, \"lora_alpha\": 16, \"target_modules\": [\"q_proj\"]}", "'r' must be a whole number")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 8, \"lora_alpha\": 16, \"use_dora\": true, \"target_modules\": [\"q_proj\"]}", "use_dora", "not supported")]
    public void Bad_config_is_a_one_line_error_naming_the_file(string json, params string[] fragments)
    {
        var error = Assert.Throws<ModelFormatException>(() => Parse(json));
        Assert.StartsWith("adapter_config.json", error.Message);
        Assert.DoesNotContain('\n', error.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, error.Message);
    }

    [Fact]
    public void Load_from_a_folder_without_a_config_says_it_is_not_an_adapter()
    {
        string dir = TestPaths.NewTempDir();
        var error = Assert.Throws<ModelFormatException>(() => LoraConfig.Load(dir));
        Assert.Equal($"{dir} is not a PEFT LoRA adapter: adapter_config.json is missing", error.Message);
    }

    [Fact]
    public void Load_of_damaged_json_names_the_file()
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), "{\"r\": 8,");
        var error = Assert.Throws<ModelFormatException>(() => LoraConfig.Load(dir));
        Assert.Contains(Path.Combine(dir, "adapter_config.json"), error.Message);
        Assert.Contains("invalid JSON", error.Message);
    }

    [Fact]
    public void Save_writes_exactly_PEFTs_fields_and_loads_back_equal()
    {
        var config = new LoraConfig
        {
            R = 8, LoraAlpha = 16, TargetModules = new[] { "q_proj", "k_proj" }, UseRslora = true, LoraDropout = 0.1,
            RankPattern = new Dictionary<string, int> { ["layers.1.self_attn.q_proj"] = 4 },
            AlphaPattern = new Dictionary<string, double> { ["k_proj"] = 2.5 }, BaseModelNameOrPath = "models/tiny",
        };
        string dir = TestPaths.NewTempDir();
        config.Save(dir);

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!.AsObject();
        Assert.Equal(new[]
        {
            "alpha_pattern", "base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode", "init_lora_weights",
            "layers_pattern", "layers_to_transform", "lora_alpha", "lora_dropout", "modules_to_save", "peft_type", "r",
            "rank_pattern", "target_modules", "task_type", "use_rslora",
        }, json.Select(p => p.Key));
        Assert.Equal("LORA", (string?)json["peft_type"]);
        Assert.Equal("CAUSAL_LM", (string?)json["task_type"]);
        Assert.Equal("16", json["lora_alpha"]!.ToJsonString()); // an int, as Python writes it
        Assert.Equal(8, (int)json["r"]!);
        Assert.Equal("[\"q_proj\",\"k_proj\"]", json["target_modules"]!.ToJsonString());
        Assert.False((bool)json["fan_in_fan_out"]!);
        Assert.True((bool)json["inference_mode"]!);
        Assert.True((bool)json["init_lora_weights"]!);
        Assert.Null(json["modules_to_save"]);
        Assert.Equal("none", (string?)json["bias"]);
        Assert.Equal(4, (int)json["rank_pattern"]!["layers.1.self_attn.q_proj"]!);
        Assert.Equal(2.5, (double)json["alpha_pattern"]!["k_proj"]!);

        var back = LoraConfig.Load(dir);
        Assert.Equal(config.R, back.R);
        Assert.Equal(config.LoraAlpha, back.LoraAlpha);
        Assert.Equal(config.TargetModules, back.TargetModules);
        Assert.Equal(config.RankPattern, back.RankPattern);
        Assert.Equal(config.AlphaPattern, back.AlphaPattern);
        Assert.Equal(config.UseRslora, back.UseRslora);
        Assert.Equal(config.LoraDropout, back.LoraDropout);
        Assert.Equal(config.BaseModelNameOrPath, back.BaseModelNameOrPath);
        Assert.Equal(config.TaskType, back.TaskType);
    }

    [Fact]
    public void Save_keeps_a_regex_target_a_string()
    {
        var config = new LoraConfig { R = 2, LoraAlpha = 4, TargetModulesRegex = @".*\.(q_proj|o_proj)" };
        string dir = TestPaths.NewTempDir();
        config.Save(dir);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!.AsObject();
        Assert.Equal(@".*\.(q_proj|o_proj)", (string?)json["target_modules"]);
        Assert.Equal(@".*\.(q_proj|o_proj)", LoraConfig.Load(dir).TargetModulesRegex);
    }
}
