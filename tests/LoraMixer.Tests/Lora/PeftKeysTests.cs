using LoraMixer.Lora;

namespace LoraMixer.Tests.Lora;

public sealed class PeftKeysTests
{
    [Theory]
    [InlineData("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "model.layers.0.self_attn.q_proj", "lora_A")]
    [InlineData("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", "model.layers.0.self_attn.q_proj", "lora_B")]
    [InlineData("base_model.model.model.layers.3.self_attn.o_proj.lora_A.default.weight", "model.layers.3.self_attn.o_proj", "lora_A")]
    [InlineData("base_model.model.backbone.layers.0.mixer.in_proj.lora_B.weight", "backbone.layers.0.mixer.in_proj", "lora_B")]
    [InlineData("base_model.model.model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.q_proj", "bias")]
    [InlineData("base_model.model.model.layers.0.self_attn.q_proj.base_layer.bias", "model.layers.0.self_attn.q_proj", "bias")]
    public void Parses_module_and_part(string key, string module, string part) =>
        Assert.Equal((module, part), PeftKeys.Parse(key));

    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj.lora_A.weight")]
    [InlineData("base_model.model.lm_head.modules_to_save.default.weight")]
    [InlineData("base_model.model.model.embed_tokens.lora_embedding_A.default")]
    [InlineData("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector.default.weight")]
    public void Rejects_keys_that_are_not_LoRA_weights(string key) => Assert.Null(PeftKeys.Parse(key));

    [Fact]
    public void Builds_PEFTs_key_names()
    {
        Assert.Equal("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", PeftKeys.LoraAKey("model.layers.0.self_attn.q_proj"));
        Assert.Equal("base_model.model.backbone.layers.1.mixer.out_proj.lora_B.weight", PeftKeys.LoraBKey("backbone.layers.1.mixer.out_proj"));
    }
}
