using LoraMixer.Models.Llama;
using LoraMixer.IO;
using LoraMixer.Lora;
using LoraMixer.Models;
using TorchSharp;
using static LoraMixer.Tests.Lora.PeftAdapterFiles;

namespace LoraMixer.Tests.Lora;

public sealed class PeftAdapterTests
{
    private static LoraConfig TwoModuleConfig => new()
    {
        R = 4, LoraAlpha = 8, TargetModules = new[] { "q_proj", "k_proj" },
        RankPattern = new Dictionary<string, int> { ["k_proj"] = 2 }, BaseModelNameOrPath = "tiny",
    };

    private static PeftAdapter MakeAdapter(LoraConfig config)
    {
        var modules = new Dictionary<string, LoraWeights>
        {
            [Q0] = new(torch.randn(4, 16), torch.randn(16, 4), config.ScalingFor(Q0), config.AlphaFor(Q0)),
            // A non-contiguous (transposed) tensor must still be written as a contiguous [r, in] matrix.
            [K0] = new(torch.randn(16, 2).t(), torch.randn(8, 2), config.ScalingFor(K0), config.AlphaFor(K0)),
        };
        return PeftAdapter.Create("mine", config, modules);
    }

    [Fact]
    public void Save_then_load_round_trips_tensors_bit_exact_and_the_config()
    {
        using var adapter = MakeAdapter(TwoModuleConfig);
        string dir = Path.Combine(TestPaths.NewTempDir(), "saved");
        adapter.Save(dir);

        using var back = PeftAdapter.Load(dir);
        Assert.Equal("saved", back.Name);
        Assert.Equal(dir, back.Directory);
        Assert.Equal(new[] { K0, Q0 }, back.Modules.Keys); // ordinal order
        foreach (var (module, weights) in adapter.Modules)
        {
            LoraWeights loaded = back.Modules[module];
            AssertBitEqual(weights.A, loaded.A);
            AssertBitEqual(weights.B, loaded.B);
            Assert.Equal(weights.Rank, loaded.Rank);
            Assert.Equal(weights.Scaling, loaded.Scaling);
            Assert.Null(loaded.Bias);
        }
        Assert.Equal(2, back.Modules[K0].Rank);
        Assert.Equal(8.0 / 2, back.Modules[K0].Scaling);
        Assert.Equal(8.0 / 4, back.Modules[Q0].Scaling);
        Assert.Equal(TwoModuleConfig.RankPattern, back.Config.RankPattern);
        Assert.Equal(TwoModuleConfig.TargetModules, back.Config.TargetModules);
        Assert.Equal("tiny", back.Config.BaseModelNameOrPath);
        Assert.Equal(new[] { "saved" }, Directory.GetFileSystemEntries(Path.GetDirectoryName(dir)!).Select(Path.GetFileName)); // no temp folder left
    }

    [Fact]
    public void Saved_weights_use_PEFTs_keys_as_contiguous_float32()
    {
        using var adapter = MakeAdapter(TwoModuleConfig);
        string dir = TestPaths.NewTempDir();
        adapter.Save(dir);

        Assert.Equal(new[] { "adapter_config.json", "adapter_model.safetensors" },
            Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        using var file = SafeTensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors"));
        Assert.Equal(new[]
        {
            "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight",
            "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight",
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
        }, file.Tensors.Keys.Order(StringComparer.Ordinal));
        Assert.All(file.Tensors.Values, info => Assert.Equal(SafeTensorsDType.F32, info.DType));
        Assert.Equal(new long[] { 2, 16 }, file.Tensors[A(K0)].Shape);
        Assert.Equal(new long[] { 8, 2 }, file.Tensors[B(K0)].Shape);
        AssertBitEqual(adapter.Modules[K0].A, file.Read(A(K0)));
        Assert.Equal("pt", file.Metadata["format"]);
    }

    [Fact]
    public void Saving_over_an_existing_adapter_replaces_it_and_keeps_other_files()
    {
        string dir = Write(Config(), (A(Q0), [2, 16]), (B(Q0), [16, 2]));
        File.WriteAllText(Path.Combine(dir, "README.md"), "notes");
        using var adapter = MakeAdapter(TwoModuleConfig);
        adapter.Save(dir);

        using var back = PeftAdapter.Load(dir);
        Assert.Equal(4, back.Config.R);
        AssertBitEqual(adapter.Modules[Q0].A, back.Modules[Q0].A);
        Assert.Equal("notes", File.ReadAllText(Path.Combine(dir, "README.md")));
    }

    [Fact]
    public void Keys_with_an_adapter_name_segment_load()
    {
        string dir = Write(Config(), ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight", [2, 16]),
            ("base_model.model.model.layers.0.self_attn.q_proj.lora_B.default.weight", [8, 2]));
        using var adapter = PeftAdapter.Load(dir, "named");
        Assert.Equal("named", adapter.Name);
        Assert.Equal(new long[] { 8, 2 }, adapter.Modules[Q0].B.shape);
    }

    [Fact]
    public void Bias_is_kept_when_the_config_saves_biases()
    {
        string dir = Write(Config(extra: ", \"bias\": \"lora_only\""), (A(Q0), [2, 16]), (B(Q0), [8, 2]),
            ("base_model.model.model.layers.0.self_attn.q_proj.bias", [8]));
        using var adapter = PeftAdapter.Load(dir);
        Assert.Equal(new long[] { 8 }, adapter.Modules[Q0].Bias!.shape);

        string copy = Path.Combine(TestPaths.NewTempDir(), "copy");
        adapter.Save(copy);
        using var file = SafeTensorsFile.Open(Path.Combine(copy, "adapter_model.safetensors"));
        Assert.True(file.Contains("base_model.model.model.layers.0.self_attn.q_proj.bias"));
    }

    [Fact]
    public void Loads_the_PEFT_experts_the_python_reference_wrote()
    {
        string experts = Path.Combine(TestPaths.Fixtures, "mixers", "tiny-llama-mixer", "experts");
        using var gamma = PeftAdapter.Load(Path.Combine(experts, "gamma"));
        Assert.Equal(8, gamma.Modules.Count);
        Assert.Equal(4, gamma.Modules["model.layers.1.self_attn.o_proj"].Rank);   // rank_pattern
        Assert.Equal(16.0 / 4, gamma.Modules["model.layers.1.self_attn.o_proj"].Scaling);
        Assert.Equal(8, gamma.Modules["model.layers.0.self_attn.o_proj"].Rank);
        Assert.Equal(16.0 / 8, gamma.Modules["model.layers.0.self_attn.o_proj"].Scaling);

        using var beta = PeftAdapter.Load(Path.Combine(experts, "beta"));
        Assert.Equal(new[]
        {
            "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
            "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj",
        }, beta.Modules.Keys);
        Assert.Equal(4 / Math.Sqrt(2), beta.Modules["model.layers.0.self_attn.q_proj"].Scaling, 12); // rsLoRA

        var baseShapes = LlamaLoader.ExpectedShapes(LlamaConfig.Load(Path.Combine(TestPaths.Fixtures, "models", "tiny-llama")))
            .ToDictionary(s => s.Name, s => s.Shape);
        gamma.CheckAgainst(baseShapes, "tiny-llama");
        beta.CheckAgainst(baseShapes, "tiny-llama");
    }
}
