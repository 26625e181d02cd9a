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
        Assert.True(allclose(expected, actual, rtol: 0, atol: 1e-6), "B starts at zero: the adapted model must equal the base");
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

    [Fact]
    public void Top_k_over_all_experts_equals_dense_soft_routing_in_output_and_router_gradient()
    {
        using var model = ModelLoader.LoadCausalLM(TinyLlama);
        using var mix = MixLora.Attach(model, experts: 3, rank: 2, topK: 3, seed: 1);
        var g = new Generator(5);
        using (no_grad())
        {
            foreach (var p in mix.ExpertProjections) p.lora_B.copy_(randn(p.lora_B.shape, generator: g) * 0.2);
            foreach (var s in mix.Slots) s.Router.weight.copy_(randn(s.Router.weight.shape, generator: g));
        }
        (Tensor Logits, Tensor[] Grads) Run(RoutingSettings routing)
        {
            foreach (var s in mix.Slots) { s.Settings = routing; s.Router.weight.grad?.zero_(); s.Router.weight.requires_grad = true; }
            var logits = model.Forward(tensor(Ids).view(1, -1));
            logits.pow(2).mean().backward();
            return (logits.detach(), mix.Slots.Select(s => s.Router.weight.grad!.clone()).ToArray());
        }
        var (sparse, sparseGrads) = Run(new RoutingSettings(RoutingMode.TopK, 3));
        var (dense, denseGrads) = Run(new RoutingSettings(RoutingMode.Soft));
        Assert.True(allclose(sparse, dense, rtol: 1e-4, atol: 1e-5), "top-3 of 3 renormalised is the softmax itself");
        for (int l = 0; l < denseGrads.Length; l++)
        {
            Assert.True(denseGrads[l].abs().max().item<float>() > 0, "the router must receive a gradient");
            Assert.True(allclose(sparseGrads[l], denseGrads[l], rtol: 1e-3, atol: 1e-6), $"router {l}: gradient through the sparse path differs");
        }
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
