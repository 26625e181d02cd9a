using LoraMixer.Errors;
using LoraMixer.IO;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>Plug-and-play over adapters whose modules differ: the union by default, what explicit targets drop, complete saved experts.</summary>
public sealed class PlugAndPlayTargetsTests
{
    private static readonly string BaseDir = Path.Combine(TestPaths.Fixtures, "models", "tiny-llama");
    private static readonly string[] QvMlp = ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"];

    [Fact]
    public void By_default_the_union_of_modules_enters_the_mixer_and_one_expert_equals_the_adapter_applied_by_PEFT_rules()
    {
        using var model = ModelLoader.LoadCausalLM(BaseDir);
        using var adapter = RandomAdapter("full", model, QvMlp, rank: 2, seed: 1);
        var chosen = PlugAndPlayTargets.Select(model, [adapter], explicitTargets: null);
        Assert.Equal(QvMlp, chosen.Targets);
        Assert.Empty(chosen.Dropped);
        Assert.Null(chosen.DroppedSummary);

        using var mixer = MixerCheckpoint.FromAdapters(model, Config(model, chosen.Targets, "full"), [adapter]);
        Assert.Equal(adapter.Modules.Count, mixer.Projections.Count);
        using var reference = ModelLoader.LoadCausalLM(BaseDir);
        AdapterInjector.Apply(reference, adapter);
        AssertSameLogits(reference, model);
    }

    [Fact]
    public void Explicit_targets_name_the_dropped_modules_and_the_saved_expert_targets_exactly_what_it_holds()
    {
        using var model = ModelLoader.LoadCausalLM(BaseDir);
        using var full = RandomAdapter("full", model, QvMlp, rank: 2, seed: 2);
        using var qv = RandomAdapter("qv", model, ["q_proj", "v_proj"], rank: 3, seed: 3);
        var chosen = PlugAndPlayTargets.Select(model, [full, qv], ["q_proj", "v_proj"]);
        var dropped = Assert.Single(chosen.Dropped);
        Assert.Equal("full", dropped.Adapter);
        Assert.Equal(["gate_proj", "up_proj", "down_proj"], dropped.Modules);
        Assert.Contains("full: gate_proj, up_proj, down_proj", chosen.DroppedSummary);
        Assert.DoesNotContain('\n', chosen.DroppedSummary!);

        string dir = Path.Combine(TestPaths.NewTempDir(), "mixer");
        using (var mixer = MixerCheckpoint.FromAdapters(model, Config(model, chosen.Targets, "full", "qv"), [full, qv]))
            MixerCheckpoint.Save(mixer, dir);
        using (var saved = PeftAdapter.Load(Path.Combine(dir, "experts", "full")))
        {
            Assert.Equal(["q_proj", "v_proj"], saved.Config.TargetModules);
            Assert.Equal(full.Modules.Keys.Where(m => m.EndsWith("q_proj") || m.EndsWith("v_proj")), saved.Modules.Keys);
            foreach (var (module, w) in saved.Modules) Assert.True(w.B.allclose(full.Modules[module].B));
        }
        using var again = ModelLoader.LoadCausalLM(BaseDir);
        using var reloaded = MixerCheckpoint.Load(again, dir);
        Assert.Equal(2, reloaded.Experts);
    }

    [Fact]
    public void Experts_with_different_modules_each_contribute_only_where_they_have_weights_and_save_back_complete()
    {
        using var model = ModelLoader.LoadCausalLM(BaseDir);
        using var a = RandomAdapter("a", model, ["q_proj", "v_proj"], rank: 2, seed: 4);
        using var b = RandomAdapter("b", model, ["k_proj", "o_proj", "gate_proj"], rank: 4, seed: 5);
        var chosen = PlugAndPlayTargets.Select(model, [a, b], explicitTargets: null);
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj"], chosen.Targets);
        string dir = Path.Combine(TestPaths.NewTempDir(), "mixer");
        using (var mixer = MixerCheckpoint.FromAdapters(model, Config(model, chosen.Targets, "a", "b"), [a, b]))
        {
            var q0 = mixer.Projections.Single(p => p.ModuleName == "model.layers.0.self_attn.q_proj");
            Assert.Equal([2, 0], q0.Ranks);
            mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
            for (int e = 0; e < 2; e++)
            {
                using var reference = ModelLoader.LoadCausalLM(BaseDir);
                AdapterInjector.Apply(reference, e == 0 ? a : b);
                mixer.SetHardExperts(tensor(new long[] { e }));
                AssertSameLogits(reference, model);
            }
            mixer.SetHardExperts(null);
            MixerCheckpoint.Save(mixer, dir);
        }
        foreach (var original in new[] { a, b })
        {
            using var saved = PeftAdapter.Load(Path.Combine(dir, "experts", original.Name));
            Assert.Equal(original.Modules.Keys, saved.Modules.Keys);
            Assert.Equal(original.Config.TargetModules, saved.Config.TargetModules);
        }
    }

    [Fact]
    public void A_mixer_folder_whose_expert_holds_modules_outside_its_targets_is_refused()
    {
        using var model = ModelLoader.LoadCausalLM(BaseDir);
        using var full = RandomAdapter("full", model, QvMlp, rank: 2, seed: 6);
        string dir = Path.Combine(TestPaths.NewTempDir(), "mixer");
        using (var mixer = MixerCheckpoint.FromAdapters(model, Config(model, QvMlp, "full"), [full]))
            MixerCheckpoint.Save(mixer, dir);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "mixer_config.json")))!;
        json["targets"] = new System.Text.Json.Nodes.JsonArray("q_proj", "v_proj");
        File.WriteAllText(Path.Combine(dir, "mixer_config.json"), json.ToJsonString());
        using var again = ModelLoader.LoadCausalLM(BaseDir);
        var e = Assert.Throws<ModelFormatException>(() => MixerCheckpoint.Load(again, dir));
        Assert.Contains("expert 'full' holds gate_proj, up_proj, down_proj", e.Message);
    }

    [Fact]
    public void An_adapter_that_saves_biases_is_refused_by_the_mixer_naming_its_folder_and_the_bias_field()
    {
        using var model = ModelLoader.LoadCausalLM(BaseDir);
        var config = new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["q_proj"], Bias = "lora_only" };
        var q = TargetLinears.Find(model, config.IsTarget)[0];
        long outF = q.Linear.weight!.shape[0], inF = q.Linear.weight!.shape[1];
        string folder = Path.Combine(TestPaths.NewTempDir(), "biased");
        using (var built = PeftAdapter.Create("biased", config, new Dictionary<string, LoraWeights>
               {
                   [q.ModuleName] = new LoraWeights(randn(2, inF), randn(outF, 2), 2.0, 4, bias: randn(outF)),
               }))
            built.Save(folder);
        using var adapter = PeftAdapter.Load(folder);
        var e = Assert.Throws<AdapterMismatchException>(() => MixerCheckpoint.FromAdapters(model, Config(model, ["q_proj"], "biased"), [adapter]));
        Assert.Contains(folder, e.Message);
        Assert.Contains("\"bias\" is \"lora_only\"", e.Message);
        // Applied alone, a bias for a linear that has none is an error too, not silently ignored.
        Assert.Throws<AdapterMismatchException>(() => AdapterInjector.Apply(model, adapter));
    }

    [Fact]
    public void A_mixer_config_without_hidden_size_and_layer_count_loads_and_a_wrong_one_is_named()
    {
        string dir = Path.Combine(TestPaths.NewTempDir(), "mixer");
        CopyDirectory(Path.Combine(TestPaths.Fixtures, "mixers", "tiny-llama-mixer"), dir);
        string file = Path.Combine(dir, "mixer_config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        json.Remove("hidden_size");
        json.Remove("num_hidden_layers");
        File.WriteAllText(file, json.ToJsonString());
        var config = MixerConfig.Load(dir);
        Assert.Null(config.HiddenSize);
        Assert.Null(config.NumHiddenLayers);
        Assert.False(config.ToJson().ContainsKey("hidden_size"));
        using (var model = ModelLoader.LoadCausalLM(BaseDir))
        using (var mixer = MixerCheckpoint.Load(model, dir))
            Assert.Equal(3, mixer.Experts);

        // Without the layer count, router weights of a deeper base are what give the mismatch away.
        string routers = Path.Combine(dir, MixerCheckpoint.RouterFile);
        using (var scope = NewDisposeScope())
        {
            List<KeyValuePair<string, Tensor>> tensors;
            using (var st = SafeTensorsFile.Open(routers))
                tensors = st.Tensors.Keys.Select(k => new KeyValuePair<string, Tensor>(k, st.Read(k))).ToList();
            tensors.Add(new("model.layers.2.router.weight", zeros(3, 64)));
            SafeTensorsWriter.Write(routers, tensors);
        }
        using (var deeper = ModelLoader.LoadCausalLM(BaseDir))
            Assert.Contains("router weight 'model.layers.2.router.weight' has no place in this base model",
                Assert.Throws<AdapterMismatchException>(() => MixerCheckpoint.Load(deeper, dir)).Message);

        json["num_hidden_layers"] = 5;
        File.WriteAllText(file, json.ToJsonString());
        using var other = ModelLoader.LoadCausalLM(BaseDir);
        var e = Assert.Throws<AdapterMismatchException>(() => MixerCheckpoint.Load(other, dir));
        Assert.Contains("layer count 5 vs 2", e.Message);
        json["num_hidden_layers"] = 0;
        File.WriteAllText(file, json.ToJsonString());
        Assert.Contains("'num_hidden_layers' is 0", Assert.Throws<ModelFormatException>(() => MixerConfig.Load(dir)).Message);
    }

    private static PeftAdapter RandomAdapter(string name, ICausalLM model, string[] targets, int rank, long seed)
    {
        var g = new Generator((ulong)seed);
        var config = new LoraConfig { R = rank, LoraAlpha = 2 * rank, TargetModules = targets };
        var modules = TargetLinears.Find(model, config.IsTarget).ToDictionary(t => t.ModuleName, t => new LoraWeights(
            randn(rank, t.Linear.weight!.shape[1], generator: g) * 0.3, randn(t.Linear.weight!.shape[0], rank, generator: g) * 0.3,
            config.ScalingFor(t.ModuleName), config.LoraAlpha));
        return PeftAdapter.Create(name, config, modules);
    }

    private static MixerConfig Config(ICausalLM model, IReadOnlyList<string> targets, params string[] experts)
    {
        var (architecture, hidden, layers) = ModelStructure.Describe(model);
        return new MixerConfig
        {
            BaseModel = BaseDir, Architecture = architecture, HiddenSize = hidden, NumHiddenLayers = layers, Targets = targets,
            Experts = experts.Select(e => new MixerExpert(e, "experts/" + e)).ToArray(),
            TopK = Math.Min(experts.Length, RoutingSettings.DefaultTopK), // k ≤ E: no silent clamp at load
        };
    }

    private static void AssertSameLogits(ICausalLM expected, ICausalLM actual)
    {
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 1, 5, 9, 14, 20, 33, 47, 60 }, new long[] { 1, 8 });
        var want = expected.Forward(ids);
        var got = actual.Forward(ids);
        Assert.True(got.allclose(want, rtol: 1e-4, atol: 1e-5), $"max difference {(got - want).abs().max().item<float>()}");
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (string d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(d.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (string f in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(f, f.Replace(from, to));
    }
}
