using LoraMixer.Errors;
using LoraMixer.Lora;
using static LoraMixer.Tests.Lora.PeftAdapterFiles;

namespace LoraMixer.Tests.Lora;

public sealed class PeftAdapterCheckAgainstTests
{
    private static readonly Dictionary<string, long[]> Base = new()
    {
        ["model.embed_tokens.weight"] = [32, 16],
        [Q0 + ".weight"] = [8, 16],
        [K0 + ".weight"] = [4, 16],
        [Q1 + ".weight"] = [8, 16],
        ["model.layers.0.mlp.up_proj.weight"] = [24, 16],
    };

    [Fact]
    public void An_adapter_that_fits_passes()
    {
        using var adapter = PeftAdapter.Load(Write(Config(), (A(Q0), [2, 16]), (B(Q0), [8, 2]), (A(K0), [2, 16]), (B(K0), [4, 2])));
        adapter.CheckAgainst(Base, "tiny");
    }

    [Fact]
    public void A_module_the_base_lacks_is_named_with_similar_ones()
    {
        using var adapter = PeftAdapter.Load(Write(Config(), (A("model.model.layers.0.self_attn.q_proj"), [2, 16]), (B("model.model.layers.0.self_attn.q_proj"), [8, 2])), "ad");
        var error = Assert.Throws<AdapterMismatchException>(() => adapter.CheckAgainst(Base, "models/tiny"));
        Assert.Contains("adapter 'ad' adapts module 'model.model.layers.0.self_attn.q_proj', which models/tiny does not have", error.Message);
        Assert.Contains($"similar modules there: {Q0}, {Q1}", error.Message);
    }

    [Fact]
    public void Input_width_mismatch_names_module_and_all_shapes()
    {
        using var adapter = PeftAdapter.Load(Write(Config(), (A(Q0), [2, 32]), (B(Q0), [8, 2])), "ad");
        var error = Assert.Throws<AdapterMismatchException>(() => adapter.CheckAgainst(Base, "tiny"));
        Assert.Contains($"module '{Q0}' has lora_A [2, 32] and lora_B [8, 2], but tiny has weight [8, 16]", error.Message);
    }

    [Fact]
    public void Output_width_mismatch_is_caught()
    {
        using var adapter = PeftAdapter.Load(Write(Config(), (A(K0), [2, 16]), (B(K0), [8, 2])), "ad");
        var error = Assert.Throws<AdapterMismatchException>(() => adapter.CheckAgainst(Base, "tiny"));
        Assert.Contains($"module '{K0}' has lora_A [2, 16] and lora_B [8, 2], but tiny has weight [4, 16]", error.Message);
    }
}
