using LoraMixer.Baselines;
using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Tests.Training;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Baselines;

[Collection(TrainingCollection.Name)]
public sealed class MoleTests
{
    private static string TinyLlama => Path.Combine(TestPaths.Fixtures, "models", "tiny-llama");

    [Fact]
    public void The_gate_weighs_the_experts_by_a_softmax_over_their_normalised_outputs_with_temperature()
    {
        // W = I, x = [1, 2]; E_0 = 1 · B_0 A_0 x = [1, 0]; E_1 = 0.5 · B_1 A_1 x = [0, 2].
        using var scope = NewDisposeScope();
        var linear = nn.Linear(2, 2, hasBias: false);
        using (no_grad()) linear.weight!.copy_(eye(2));
        var a = tensor(new float[] { 1, 0, 0, 1 }, new long[] { 2, 1, 2 });
        var b = tensor(new float[] { 1, 0, 0, 2 }, new long[] { 2, 2, 1 });
        using var mole = new MoleLinear("m", linear, a, b, new[] { 1.0, 0.5 }, temperature: 2.0);
        using (no_grad()) mole.gate.copy_(tensor(new float[] { 1, 0, 0, 0, 0, 0, 0, 1 }, new long[] { 2, 4 }));
        var x = tensor(new float[] { 1, 2 }, new long[] { 1, 2 });

        // By hand: concatenation [1, 0, 0, 2], layer norm (mean 0.75, variance 0.6875), ε = [z_0, z_3], G = softmax(ε / 2).
        double[] concat = { 1, 0, 0, 2 };
        double mean = concat.Average(), std = Math.Sqrt(concat.Average(v => (v - mean) * (v - mean)) + 1e-5);
        double e0 = (concat[0] - mean) / std / 2, e1 = (concat[3] - mean) / std / 2;
        double g0 = Math.Exp(e0) / (Math.Exp(e0) + Math.Exp(e1)), g1 = 1 - g0;
        using var _ = no_grad();
        var (gates, _) = mole.Gate(x);
        Assert.Equal(g0, gates[0, 0].item<float>(), 5);
        Assert.Equal(g1, gates[0, 1].item<float>(), 5);
        var y = mole.forward(x);
        Assert.Equal(1 + g0 * 1, y[0, 0].item<float>(), 5);
        Assert.Equal(2 + g1 * 2, y[0, 1].item<float>(), 5);
    }

    [Fact]
    public void Gating_balance_loss_matches_hand_values()
    {
        // Sample 1 (its second token is padding): gates [0.8, 0.2] and [0.6, 0.4] → q = [0.7, 0.3], −ln 0.7 − ln 0.3 = 1.560648.
        // Sample 2: [0.5, 0.5] twice → q = [0.5, 0.5], 2 ln 2 = 1.386294. Mean 1.473471.
        var first = tensor(new float[] { 0.8f, 0.2f, 0.0f, 1.0f, 0.5f, 0.5f, 0.5f, 0.5f }, new long[] { 2, 2, 2 });
        var second = tensor(new float[] { 0.6f, 0.4f, 1.0f, 0.0f, 0.5f, 0.5f, 0.5f, 0.5f }, new long[] { 2, 2, 2 });
        var mask = tensor(new long[] { 1, 0, 1, 1 }, new long[] { 2, 2 });
        Assert.Equal(1.473471, Mole.BalanceLoss(new[] { first, second }, mask).item<float>(), 5);
    }

    [Fact]
    public void Zero_gates_equal_the_uniform_merge_and_training_moves_only_the_gates()
    {
        using var expertModel = ModelLoader.LoadCausalLM(TinyLlama);
        using var mixer = RandomMixer(expertModel);
        using var model = ModelLoader.LoadCausalLM(TinyLlama);
        using var mole = Mole.FromMixer(model, mixer);
        var ids = tensor(new long[] { 1, 5, 9, 17, 3, 22, 8, 40 }).view(1, -1);
        using (no_grad())
        {
            mixer.SetRouting(new RoutingSettings(RoutingMode.Soft)); // zero routers: every expert weighted 1/E
            Assert.True(allclose(model.Forward(ids), expertModel.Forward(ids), rtol: 1e-4, atol: 1e-5), "zero gates weigh every expert 1/E");
        }
        var experts = mole.Gated.Select(g => g.lora_B.detach().clone()).ToArray();
        string tokenizerDir = TestPaths.NewTempDir();
        LoraMixer.Demo.DemoTokenizer.WriteFiles(tokenizerDir);
        var tokenizer = TokenizerLoader.Load(tokenizerDir);
        var records = Enumerable.Range(0, 16).Select(i => new TrainingRecord($"q {i}", $" a {i % 3}", null, null, "mem", i + 1)).ToArray();
        var summary = mole.Train(tokenizer, records, new FineTuneSettings
        {
            MaxLength = 32, BatchSize = 4, EvalFraction = 0, Trainer = new TrainerOptions { MaxSteps = 3, LearningRate = 1e-2, Seed = 3 },
        });
        Assert.Equal(3, summary.Steps);
        Assert.All(mole.Parameters(), p => Assert.True(p.Value.abs().max().item<float>() > 0, $"{p.Key} did not train"));
        Assert.All(mole.Gated.Zip(experts), pair => Assert.True(pair.First.lora_B.allclose(pair.Second, rtol: 0, atol: 0), "the experts must stay frozen"));
        Assert.All(mole.Parameters(), p => Assert.False(p.Value.requires_grad));
    }

    private static LoraMixerModel RandomMixer(ICausalLM model)
    {
        var g = new Generator(11);
        var config = new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = new[] { "q_proj", "v_proj" } };
        PeftAdapter Random(string name)
        {
            var modules = TargetLinears.Find(model, config.IsTarget).ToDictionary(t => t.ModuleName,
                t => new LoraWeights(randn(2, t.Linear.weight!.shape[1], generator: g) * 0.3, randn(t.Linear.weight!.shape[0], 2, generator: g) * 0.3, 2.0, 4));
            return PeftAdapter.Create(name, config, new SortedDictionary<string, LoraWeights>(modules, StringComparer.Ordinal));
        }
        using var a = Random("a");
        using var b = Random("b");
        using var c = Random("c");
        var (arch, hidden, layers) = ModelStructure.Describe(model);
        var mixerConfig = new MixerConfig
        {
            BaseModel = TinyLlama, Architecture = arch, HiddenSize = hidden, NumHiddenLayers = layers, Targets = new[] { "q_proj", "v_proj" },
            Experts = new[] { new MixerExpert("a", "experts/a"), new MixerExpert("b", "experts/b"), new MixerExpert("c", "experts/c") },
        };
        return MixerCheckpoint.FromAdapters(model, mixerConfig, new[] { a, b, c });
    }
}
