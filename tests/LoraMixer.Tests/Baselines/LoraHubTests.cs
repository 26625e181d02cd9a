using LoraMixer.Baselines;
using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Baselines;

public sealed class LoraHubTests
{
    [Fact]
    public void Nelder_Mead_finds_the_minimum_of_a_shifted_quadratic()
    {
        var (x, f) = NelderMead.Minimize(p => Math.Pow(p[0] - 1.5, 2) + 3 * Math.Pow(p[1] + 0.5, 2) + 2, new[] { 0.0, 0.0 }, 0.5, 200);
        Assert.Equal(1.5, x[0], 3);
        Assert.Equal(-0.5, x[1], 3);
        Assert.Equal(2.0, f, 5);
    }

    [Fact]
    public void Objective_is_the_loss_plus_0_05_times_the_mean_absolute_weight()
    {
        // 2.0 + 0.05 · (|1| + |−0.5| + |0|) / 3 = 2.0 + 0.05 · 0.5 = 2.025 (the sum would give 2.075).
        Assert.Equal(2.025, LoraHub.Objective(2.0, new[] { 1.0, -0.5, 0.0 }), 12);
        Assert.Equal(0.0, LoraHub.Objective(0.0, new[] { 0.0, 0.0 }), 12);
    }

    [Fact]
    public void Weights_are_clipped_to_plus_minus_1_5()
    {
        Assert.Equal(new[] { 1.5, -1.5, 0.7, -1.5 }, LoraHub.Clip(new[] { 2.0, -3.0, 0.7, -1.5 }));
    }

    [Fact]
    public void Search_starts_at_zero_and_stays_within_the_bounds()
    {
        var seen = new List<double[]>();
        // Loss minimised at w = 3 (outside the bounds): the answer is the bound, 1.5, in every coordinate.
        var (w, objective) = LoraHub.Search(x => { seen.Add(x); return x.Sum(v => (v - 3) * (v - 3)); }, experts: 2, maxEvaluations: 200);
        Assert.Equal(new[] { 0.0, 0.0 }, seen[0]);
        Assert.All(seen.SelectMany(x => x), v => Assert.InRange(v, -1.5, 1.5));
        Assert.Equal(1.5, w[0], 3);
        Assert.Equal(1.5, w[1], 3);
        Assert.Equal(2 * 1.5 * 1.5 + 0.05 * 1.5, objective, 3);
    }

    [Fact]
    public void Search_trades_the_loss_against_the_mean_L1_penalty()
    {
        // loss = Σ (w_i − 1)²; with 0.05·mean|w| over n = 2 the optimum is w_i = 1 − 0.05 / (2·2) = 0.9875
        // (with 0.05·Σ|w| it would be 0.975).
        var (w, _) = LoraHub.Search(x => x.Sum(v => (v - 1) * (v - 1)), experts: 2, maxEvaluations: 400);
        Assert.All(w, v => Assert.InRange(v, 0.984, 0.991));
    }

    [Fact]
    public void LoraHub_merges_A_and_B_with_the_weights_it_found()
    {
        string baseDir = Path.Combine(TestPaths.Fixtures, "models", "tiny-llama");
        var g = new Generator(11);
        var config = new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = new[] { "q_proj", "v_proj" } };
        PeftAdapter Random(string name)
        {
            using var m = ModelLoader.LoadCausalLM(baseDir);
            var modules = TargetLinears.Find(m, config.IsTarget).ToDictionary(t => t.ModuleName,
                t => new LoraWeights(randn(2, t.Linear.weight!.shape[1], generator: g) * 0.3, randn(t.Linear.weight!.shape[0], 2, generator: g) * 0.3, 2.0, 4));
            return PeftAdapter.Create(name, config, new SortedDictionary<string, LoraWeights>(modules, StringComparer.Ordinal));
        }
        using var a = Random("a");
        using var b = Random("b");
        var examples = Enumerable.Range(0, 4).Select(i => new EncodedExample(
            Enumerable.Range(0, 10).Select(j => 1 + (i * 7 + j * 3) % 100).ToArray(), Enumerable.Range(0, 10).Select(j => j > 0).ToArray(), -1, i + 1)).ToArray();
        using var model = ModelLoader.LoadCausalLM(baseDir);
        var (arch, hidden, layers) = ModelStructure.Describe(model);
        var mixerConfig = new MixerConfig
        {
            BaseModel = baseDir, Architecture = arch, HiddenSize = hidden, NumHiddenLayers = layers,
            Targets = new[] { "q_proj", "v_proj" }, Experts = new[] { new MixerExpert("a", "experts/a"), new MixerExpert("b", "experts/b") },
        };
        using var mixer = MixerCheckpoint.FromAdapters(model, mixerConfig, new[] { a, b });
        var experts = LoraHub.Snapshot(mixer);
        var w = LoraHub.Fit(mixer, experts, examples, 0, maxEvaluations: 30);
        foreach (var t in experts.A.Concat(experts.B)) t.Dispose();
        Assert.Equal(2, w.Length);

        // Independent check: a plain LoRA with A = w0·A_a + w1·A_b and B = w0·B_a + w1·B_b gives the same logits.
        using var reference = ModelLoader.LoadCausalLM(baseDir);
        var merged = a.Modules.ToDictionary(kv => kv.Key, kv => new LoraWeights(
            kv.Value.A * w[0] + b.Modules[kv.Key].A * w[1], kv.Value.B * w[0] + b.Modules[kv.Key].B * w[1], 2.0, 4));
        using var mergedAdapter = PeftAdapter.Create("merged", config, new SortedDictionary<string, LoraWeights>(merged, StringComparer.Ordinal));
        AdapterInjector.Apply(reference, mergedAdapter);
        var ids = tensor(examples[0].InputIds.Select(i => (long)i).ToArray(), new long[] { 1, 10 });
        using var noGrad = no_grad();
        mixer.SetHardExperts(tensor(new long[] { 0 }));
        Assert.True(model.Forward(ids).allclose(reference.Forward(ids), rtol: 1e-4, atol: 1e-5));
    }
}
