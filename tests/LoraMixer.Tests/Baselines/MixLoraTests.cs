using LoraMixer.Baselines;
using LoraMixer.Data;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Tests.Training;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Baselines;

[Collection(TrainingCollection.Name)]
public sealed class MixLoraTests
{
    private static string TinyLlama => Path.Combine(TestPaths.Fixtures, "models", "tiny-llama");
    private static readonly long[] Ids = { 1, 5, 9, 17, 3, 22, 8, 40 };

    [Fact]
    public void Fresh_MixLoRA_leaves_the_base_model_unchanged_and_names_its_routers_after_the_MLP()
    {
        using var plain = ModelLoader.LoadCausalLM(TinyLlama);
        using var model = ModelLoader.LoadCausalLM(TinyLlama);
        using var mix = MixLora.Attach(model, experts: 3, rank: 2, topK: 2, seed: 1);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ids = tensor(Ids).view(1, -1);
        var expected = plain.Forward(ids);
        var actual = model.Forward(ids);
        Assert.True(allclose(expected, actual, rtol: 1e-5, atol: 1e-5), "B starts at zero: the adapted model must equal the base");
        var (_, _, layers) = ModelStructure.Describe(model);
        Assert.Equal(Enumerable.Range(0, layers).Select(l => $"model.layers.{l}.mlp.router.weight"),
            mix.Parameters().Select(p => p.Key).Where(k => k.Contains("router")));
    }

    [Fact]
    public void Parameter_count_is_attention_LoRA_plus_E_experts_per_MLP_projection_plus_routers()
    {
        using var probe = ModelLoader.LoadCausalLM(TinyLlama);
        long expected = 0;
        int experts = 3, rank = 2;
        var (_, hidden, layers) = ModelStructure.Describe(probe);
        foreach (var t in global::LoraMixer.Lora.TargetLinears.Find(probe, _ => true))
        {
            long inOut = t.Linear.weight!.shape[0] + t.Linear.weight!.shape[1];
            bool mlp = MixLora.MlpProjections.Any(p => t.ModuleName.EndsWith(p, StringComparison.Ordinal));
            expected += (mlp ? experts : 1) * rank * inOut;
        }
        expected += (long)layers * experts * hidden;
        using var model = ModelLoader.LoadCausalLM(TinyLlama);
        using var mix = MixLora.Attach(model, experts, rank, topK: 2, seed: 1);
        Assert.Equal(expected, mix.ParameterCount);
    }

    [Theory]
    [InlineData(3, 2)]
    [InlineData(1, 1)] // one expert with gate 1: the plain LoRA-adapted FFN
    public void The_FFN_is_the_renormalised_top_k_weighted_sum_of_whole_expert_FFNs(int experts, int topK)
    {
        using var model = ModelLoader.LoadCausalLM(TinyLlama);
        using var mix = MixLora.Attach(model, experts, rank: 2, topK, seed: 1);
        var g = new Generator(5);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        foreach (var p in mix.ExpertProjections) p.lora_B.copy_(randn(p.lora_B.shape, generator: g) * 0.3);
        var mlp = ((LoraMixer.Models.Llama.LlamaForCausalLM)model).model.layers[1].mlp;
        var (_, hidden, _) = ModelStructure.Describe(model);
        var x = randn(new long[] { 2, 3, hidden }, generator: g);
        var slot = mix.Slots[1];
        slot.Route(x);
        var actual = mlp.forward(x).reshape(-1, hidden);

        // Reference, token by token: softmax of the router, its top-k renormalised, and each chosen expert's
        // whole FFN down_e(silu(gate_e(x)) · up_e(x)) with W_e = W + s B_e A_e, summed with those weights.
        var projections = mix.ExpertProjections.Where(p => p.ModuleName.StartsWith("model.layers.1.", StringComparison.Ordinal))
            .ToDictionary(p => p.ModuleName[(p.ModuleName.LastIndexOf('.') + 1)..]);
        Tensor Project(string name, int e, Tensor v)
        {
            var p = projections[name];
            var w = p.base_layer.weight! + p.lora_B[e].matmul(p.lora_A[e]) * p.Scaling;
            return w.matmul(v);
        }
        var tokens = x.reshape(-1, hidden);
        for (int n = 0; n < tokens.shape[0]; n++)
        {
            var v = tokens[n];
            var probabilities = slot.Router.weight.matmul(v).softmax(0);
            var (top, chosen) = probabilities.topk(topK);
            var weights = top / top.sum();
            var expected = zeros(hidden);
            for (int j = 0; j < topK; j++)
            {
                int e = (int)chosen[j].item<long>();
                var h = nn.functional.silu(Project("gate_proj", e, v)) * Project("up_proj", e, v);
                expected += weights[j] * Project("down_proj", e, h);
            }
            Assert.True(allclose(actual[n], expected, rtol: 1e-4, atol: 1e-5), $"token {n}: MixLoRA FFN differs from Σ g_j FFN_j(x)");
        }
        if (experts == 1)
            Assert.True(allclose(slot.Current.TopWeights!, ones(tokens.shape[0], 1)), "a single expert has gate 1");
    }

    [Fact]
    public void Load_balancing_loss_matches_hand_values()
    {
        // E = 3, k = 2, two real tokens and one padded: token 1 picks (0, 1), token 2 picks (1, 2).
        // f = [[½, ½, 0], [0, ½, ½]], P = [0.3, 0.45, 0.25]; 3 · (½·0.3 + ½·0.45 + ½·0.45 + ½·0.25) = 2.175.
        var p = tensor(new float[] { 0.5f, 0.3f, 0.2f, 0.1f, 0.6f, 0.3f, 0.0f, 0.0f, 1.0f }, new long[] { 1, 3, 3 });
        var mask = tensor(new long[] { 1, 1, 0 }).view(1, 3);
        Assert.Equal(2.175, MixLora.LoadBalancingLoss(new[] { p }, mask, topK: 2).item<float>(), 5);
        // E = 2, k = 1, two layers pooled: choices (0, 0) and (0, 1), P = [0.625, 0.375], f = [¾, ¼]; 2 · (¾·0.625 + ¼·0.375) = 1.125.
        var a = tensor(new float[] { 0.8f, 0.2f, 0.7f, 0.3f }, new long[] { 1, 2, 2 });
        var b = tensor(new float[] { 0.6f, 0.4f, 0.5f - 0.1f, 0.5f + 0.1f }, new long[] { 1, 2, 2 });
        Assert.Equal(1.125, MixLora.LoadBalancingLoss(new[] { a, b }, ones(1, 2), topK: 1).item<float>(), 5);
    }

    [Fact]
    public void The_router_receives_a_gradient_through_the_top_k_weights()
    {
        using var model = ModelLoader.LoadCausalLM(TinyLlama);
        using var mix = MixLora.Attach(model, experts: 4, rank: 2, topK: 2, seed: 1);
        var g = new Generator(5);
        using (no_grad())
            foreach (var p in mix.ExpertProjections) p.lora_B.copy_(randn(p.lora_B.shape, generator: g) * 0.2);
        foreach (var s in mix.Slots) s.Router.weight.requires_grad = true;
        model.Forward(tensor(Ids).view(1, -1)).pow(2).mean().backward();
        Assert.All(mix.Slots, s => Assert.True(s.Router.weight.grad!.abs().max().item<float>() > 0, $"{s.Name} got no gradient"));
        foreach (var s in mix.Slots) s.Router.weight.requires_grad = false;
    }

    [Fact]
    public void Training_moves_routers_experts_and_the_attention_LoRA()
    {
        using var model = ModelLoader.LoadCausalLM(TinyLlama);
        string tokenizerDir = TestPaths.NewTempDir();
        LoraMixer.Demo.DemoTokenizer.WriteFiles(tokenizerDir); // 100 character tokens, within tiny-llama's vocabulary of 128
        var tokenizer = TokenizerLoader.Load(tokenizerDir);
        using var mix = MixLora.Attach(model, experts: 2, rank: 2, topK: 1, seed: 3);
        var records = Enumerable.Range(0, 16).Select(i => new TrainingRecord($"q {i}", $" a {i % 3}", null, null, "mem", i + 1)).ToArray();
        var summary = mix.Train(tokenizer, records, new FineTuneSettings
        {
            MaxLength = 32, BatchSize = 4, EvalFraction = 0,
            Trainer = new TrainerOptions { MaxSteps = 4, LearningRate = 1e-2, Seed = 3 },
        });
        Assert.Equal(4, summary.Steps);
        Assert.True(summary.FinalLoss is double loss && double.IsFinite(loss));
        var parameters = mix.Parameters();
        Assert.All(parameters.Where(p => p.Key.Contains("router")), p => Assert.True(p.Value.abs().max().item<float>() > 0, $"{p.Key} did not train"));
        Assert.Contains(parameters, p => p.Key.Contains("self_attn") && p.Key.EndsWith("lora_B") && p.Value.abs().max().item<float>() > 0);
        Assert.Contains(parameters, p => p.Key.Contains("mlp") && p.Key.EndsWith("lora_B") && p.Value.abs().max().item<float>() > 0);
        Assert.All(parameters, p => Assert.False(p.Value.requires_grad, "training must leave the parameters frozen"));
    }

    [Fact]
    public void A_Mamba_model_has_no_MLP_to_route()
    {
        using var model = ModelLoader.LoadCausalLM(Path.Combine(TestPaths.Fixtures, "models", "tiny-mamba"));
        var e = Assert.Throws<NotSupportedException>(() => MixLora.Attach(model, 2, 2, 1, 0));
        Assert.Contains("MLP", e.Message);
    }
}
