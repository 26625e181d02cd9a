using LoraMixer.Errors;
using LoraMixer.Lora;
using TorchSharp;
using static LoraMixer.Tests.Lora.PeftAdapterFiles;

namespace LoraMixer.Tests.Lora;

public sealed class PeftAdapterErrorTests
{
    private static ModelFormatException Fails(string dir, params string[] fragments)
    {
        var error = Assert.Throws<ModelFormatException>(() => PeftAdapter.Load(dir).Dispose());
        Assert.DoesNotContain('\n', error.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, error.Message);
        return error;
    }

    [Fact]
    public void Missing_folder() =>
        Fails(Path.Combine(TestPaths.NewTempDir(), "nope"), "nope does not exist");

    [Fact]
    public void Folder_without_adapter_config()
    {
        string dir = Write(Config(), (A(Q0), [2, 16]), (B(Q0), [8, 2]));
        File.Delete(Path.Combine(dir, "adapter_config.json"));
        Assert.Equal($"{dir} is not a PEFT LoRA adapter: adapter_config.json is missing", Fails(dir).Message);
    }

    [Fact]
    public void Pickle_bin_weights_only()
    {
        string dir = Write(Config(), (A(Q0), [2, 16]), (B(Q0), [8, 2]));
        File.Move(Path.Combine(dir, "adapter_model.safetensors"), Path.Combine(dir, "adapter_model.bin"));
        Fails(dir, dir, "pickle .bin adapters are not supported; convert with safetensors");
    }

    [Fact]
    public void Missing_weights_file()
    {
        string dir = Write(Config(), (A(Q0), [2, 16]), (B(Q0), [8, 2]));
        File.Delete(Path.Combine(dir, "adapter_model.safetensors"));
        Fails(dir, "adapter_model.safetensors is missing");
    }

    [Fact]
    public void Lora_A_without_lora_B() =>
        Fails(Write(Config(), (A(Q0), [2, 16]), (B(Q0), [8, 2]), (A(K0), [2, 16])), $"module '{K0}' has lora_A but no lora_B");

    [Fact]
    public void Lora_B_without_lora_A() =>
        Fails(Write(Config(), (B(Q0), [8, 2])), $"module '{Q0}' has lora_B but no lora_A");

    [Fact]
    public void Rank_disagreeing_with_r() =>
        Fails(Write(Config(r: 4), (A(Q0), [2, 16]), (B(Q0), [8, 2])), $"module '{Q0}' has rank 2 in the weights", "gives rank 4");

    [Fact]
    public void Rank_disagreeing_with_rank_pattern() =>
        Fails(Write(Config(r: 2, extra: ", \"rank_pattern\": {\"layers.0.self_attn.q_proj\": 8}"), (A(Q0), [2, 16]), (B(Q0), [8, 2])),
            $"module '{Q0}' has rank 2", "gives rank 8");

    [Fact]
    public void A_and_B_ranks_differ() =>
        Fails(Write(Config(), (A(Q0), [2, 16]), (B(Q0), [8, 3])), $"module '{Q0}'", "lora_A [2, 16] has rank 2 but lora_B [8, 3] has rank 3");

    [Fact]
    public void Module_not_selected_by_target_modules() =>
        Fails(Write(Config(targets: "[\"v_proj\"]"), (A(Q0), [2, 16]), (B(Q0), [8, 2])), $"module '{Q0}' is not selected by target_modules [v_proj]");

    [Fact]
    public void Tensor_that_is_not_a_LoRA_weight() =>
        Fails(Write(Config(), (A(Q0), [2, 16]), (B(Q0), [8, 2]), ("base_model.model.lm_head.modules_to_save.default.weight", [4, 4])),
            "'base_model.model.lm_head.modules_to_save.default.weight' is not a LoRA weight");

    [Fact]
    public void Bias_tensor_with_bias_none() =>
        Fails(Write(Config(), (A(Q0), [2, 16]), (B(Q0), [8, 2]), ("base_model.model.model.layers.0.self_attn.q_proj.bias", [8])),
            "bias \"none\"");

    [Fact]
    public void Empty_weights_file() => Fails(Write(Config()), "holds no LoRA weights");

    [Fact]
    public void Create_rejects_a_rank_the_config_does_not_give()
    {
        var config = new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = new[] { "q_proj" } };
        var modules = new Dictionary<string, LoraWeights> { [Q0] = new(torch.zeros(2, 16), torch.zeros(8, 2), 4, 8) };
        var error = Assert.Throws<ArgumentException>(() => PeftAdapter.Create("x", config, modules));
        Assert.Contains("has rank 2 but the config gives rank 4", error.Message);
        modules[Q0].Dispose();
    }
}
