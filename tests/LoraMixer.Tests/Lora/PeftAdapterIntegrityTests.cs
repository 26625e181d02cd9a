using LoraMixer.Errors;
using LoraMixer.IO;
using LoraMixer.Lora;
using static TorchSharp.torch;
using static LoraMixer.Tests.Lora.PeftAdapterFiles;

namespace LoraMixer.Tests.Lora;

/// <summary>Damaged or unsupported adapters fail at load, naming the adapter and the tensor or field.</summary>
public sealed class PeftAdapterIntegrityTests
{
    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void Non_finite_weights_fail_to_load_naming_the_adapter_and_tensor(float bad)
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), Config(targets: "[\"q_proj\"]"));
        using (var scope = NewDisposeScope())
        {
            var b = zeros(5, 2);
            b[3, 1] = tensor(bad);
            SafeTensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"),
                [new(A(Q0), randn(2, 4)), new(B(Q0), b)]);
        }
        var e = Assert.Throws<ModelFormatException>(() => PeftAdapter.Load(dir, "damaged"));
        Assert.Contains("adapter damaged", e.Message);
        Assert.Contains($"'{B(Q0)}'", e.Message);
        Assert.Contains("NaN or infinite", e.Message);
    }

    [Fact]
    public void A_bias_all_adapter_with_biases_of_modules_without_a_LoRA_names_the_bias_field()
    {
        string dir = Write(Config(targets: "[\"q_proj\"]", extra: ", \"bias\": \"all\""),
            (A(Q0), [2, 4]), (B(Q0), [5, 2]), ("base_model.model.model.layers.0.mlp.down_proj.bias", [5]));
        var e = Assert.Throws<ModelFormatException>(() => PeftAdapter.Load(dir));
        Assert.Contains("\"bias\" is \"all\"", e.Message);
        Assert.Contains("model.layers.0.mlp.down_proj", e.Message);
    }

    [Fact]
    public void RestrictedTo_keeps_the_list_entries_that_select_kept_modules_and_turns_a_regex_into_the_names()
    {
        var list = new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["q_proj", "v_proj", "gate_proj"], RankPattern = new Dictionary<string, int> { ["q_proj"] = 4 } };
        var narrowed = list.RestrictedTo([Q0, "model.layers.0.self_attn.v_proj"]);
        Assert.Equal(["q_proj", "v_proj"], narrowed.TargetModules);
        Assert.Equal(4, narrowed.RankFor(Q0));
        Assert.False(narrowed.IsTarget("model.layers.0.mlp.gate_proj"));

        var regex = new LoraConfig { R = 2, LoraAlpha = 4, TargetModulesRegex = @".*\.(q_proj|up_proj)" };
        var fromRegex = regex.RestrictedTo([Q1, Q0]);
        Assert.Null(fromRegex.TargetModulesRegex);
        Assert.Equal([Q0, Q1], fromRegex.TargetModules);
        Assert.Throws<ArgumentException>(() => list.RestrictedTo(["model.layers.0.self_attn.k_proj"]));
    }
}
