using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Models.Mamba;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>LoRA experts and the LoRA-Mixer on a Mamba model's in_proj / out_proj (tiny-mamba fixture).</summary>
public sealed class MambaMixerTests
{
    private static string Base => Path.Combine(TestPaths.Fixtures, "models", "tiny-mamba");
    private static readonly Tensor Ids = tensor(new long[] { 0, 5, 17, 33, 2, 90, 41, 7 }, new long[] { 1, 8 });

    private static LoraConfig ExpertConfig(int r) => new() { R = r, LoraAlpha = 2 * r, TargetModules = TargetLinears.MambaProjections };

    /// <summary>A PEFT adapter with random A and B on every in_proj and out_proj of tiny-mamba.</summary>
    private static PeftAdapter RandomAdapter(string name, int r, ulong seed)
    {
        using var model = ModelLoader.LoadCausalLM(Base);
        var g = new Generator(seed);
        var config = ExpertConfig(r);
        var modules = new SortedDictionary<string, LoraWeights>(StringComparer.Ordinal);
        foreach (var t in TargetLinears.Find(model, config.IsTarget))
        {
            long outF = t.Linear.weight!.shape[0], inF = t.Linear.weight!.shape[1];
            modules[t.ModuleName] = new LoraWeights(randn(r, inF, generator: g) * 0.2, randn(outF, r, generator: g) * 0.2, config.ScalingFor(t.ModuleName), config.LoraAlpha);
        }
        return PeftAdapter.Create(name, config, modules);
    }

    private static MixerConfig Config(ICausalLM model, params string[] experts)
    {
        var (architecture, hidden, layers) = ModelStructure.Describe(model);
        return new MixerConfig
        {
            BaseModel = Base, Architecture = architecture, HiddenSize = hidden, NumHiddenLayers = layers,
            Targets = TargetLinears.MambaProjections, Experts = experts.Select(e => new MixerExpert(e, "experts/" + e)).ToArray(),
        };
    }

    [Fact]
    public void Mamba_targets_are_in_proj_and_out_proj_with_PEFT_module_names()
    {
        using var model = ModelLoader.LoadCausalLM(Base);
        Assert.IsType<MambaForCausalLM>(model);
        var names = TargetLinears.Find(model, ExpertConfig(2).IsTarget).Select(t => t.ModuleName).ToArray();
        Assert.Equal(new[] { "backbone.layers.0.mixer.in_proj", "backbone.layers.0.mixer.out_proj", "backbone.layers.1.mixer.in_proj", "backbone.layers.1.mixer.out_proj" }, names);
        using var adapter = RandomAdapter("a", 2, 1);
        string dir = Path.Combine(TestPaths.NewTempDir(), "a");
        adapter.Save(dir);
        using var file = LoraMixer.IO.SafeTensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors"));
        Assert.Contains("base_model.model.backbone.layers.0.mixer.in_proj.lora_A.weight", file.Tensors.Keys);
        Assert.Contains("base_model.model.backbone.layers.1.mixer.out_proj.lora_B.weight", file.Tensors.Keys);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Hard_routing_on_Mamba_equals_that_experts_adapter(int expert)
    {
        using var a = RandomAdapter("a", 2, 1);
        using var b = RandomAdapter("b", 4, 2);
        using var noGrad = no_grad();
        using var single = ModelLoader.LoadCausalLM(Base);
        AdapterInjector.Apply(single, expert == 0 ? a : b);
        var expected = single.Forward(Ids);

        using var model = ModelLoader.LoadCausalLM(Base);
        using var mixer = MixerCheckpoint.FromAdapters(model, Config(model, "a", "b"), new[] { a, b });
        mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
        mixer.SetHardExperts(tensor(new long[] { expert }));
        Assert.True(model.Forward(Ids).allclose(expected, rtol: 1e-4, atol: 1e-5));
        using var plain = ModelLoader.LoadCausalLM(Base);
        Assert.False(expected.allclose(plain.Forward(Ids), rtol: 1e-3, atol: 1e-3), "the adapter must change the logits");
    }

    [Fact]
    public void Mamba_block_router_reads_the_mixer_input_and_round_trips_through_the_checkpoint()
    {
        using var a = RandomAdapter("a", 2, 1);
        using var b = RandomAdapter("b", 4, 2);
        using var noGrad = no_grad();
        using var model = ModelLoader.LoadCausalLM(Base);
        using var mixer = MixerCheckpoint.FromAdapters(model, Config(model, "a", "b"), new[] { a, b });
        Assert.Equal(new[] { "backbone.layers.0.mixer.router.weight", "backbone.layers.1.mixer.router.weight" }, mixer.RouterParameters().Select(p => p.Key));
        Assert.Contains("backbone.layers.1.mixer.router.weight", ((TorchSharp.torch.nn.Module)model).named_parameters().Select(p => p.name));
        var g = new Generator(5);
        foreach (var (_, w) in mixer.RouterParameters()) w.copy_(randn(w.shape, generator: g));
        mixer.SetRouting(new RoutingSettings(RoutingMode.TopK, 1));
        var top1 = model.Forward(Ids);

        // Decoding with the recurrent cache routes each new token and must equal full recomputation.
        using var cache = model.CreateCache(1, 8);
        var prefix = model.Forward(Ids.narrow(1, 0, 5), cache: cache);
        Assert.True(prefix.allclose(top1.narrow(1, 0, 5), rtol: 1e-4, atol: 1e-5));
        for (int t = 5; t < 8; t++)
            Assert.True(model.Forward(Ids.narrow(1, t, 1), cache: cache).allclose(top1.narrow(1, t, 1), rtol: 1e-4, atol: 1e-4), $"step {t}");

        string dir = Path.Combine(TestPaths.NewTempDir(), "mixer");
        MixerCheckpoint.Save(mixer, dir);
        using var model2 = ModelLoader.LoadCausalLM(Base);
        using var mixer2 = MixerCheckpoint.Load(model2, dir);
        mixer2.SetRouting(new RoutingSettings(RoutingMode.TopK, 1));
        Assert.True(model2.Forward(Ids).allclose(top1, rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void A_Llama_mixer_on_a_Mamba_model_names_what_differs()
    {
        using var model = ModelLoader.LoadCausalLM(Base);
        var e = Assert.Throws<LoraMixer.Errors.AdapterMismatchException>(() =>
            MixerCheckpoint.Load(model, Path.Combine(TestPaths.Fixtures, "mixers", "tiny-llama-mixer")));
        Assert.Contains("architecture LlamaForCausalLM vs MambaForCausalLM", e.Message);
    }
}
