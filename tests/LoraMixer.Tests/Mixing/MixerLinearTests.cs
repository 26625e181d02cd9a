using LoraMixer.Mixing;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

public sealed class MixerLinearTests
{
    private static readonly int[] Ranks = { 2, 4, 3 };
    private static readonly double[] Scalings = { 2.0, 0.5, 1.5 };

    [Fact]
    public void One_expert_with_gate_one_equals_plain_LoRA()
    {
        var bench = new MixerTestBench(1, new[] { 4 }, new[] { 2.0 }, new RoutingSettings(RoutingMode.Soft));
        bench.SetRouter(randn(1, MixerTestBench.In)); // softmax over one expert is 1 whatever the router says
        var x = randn(2, 5, MixerTestBench.In);
        Assert.True(bench.Mixer.forward(x).allclose(bench.Experts[0].forward(x), rtol: 1e-5, atol: 1e-5));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void Hard_one_hot_routing_equals_that_experts_adapter(int expert)
    {
        var bench = new MixerTestBench(2, Ranks, Scalings, new RoutingSettings(RoutingMode.Hard));
        bench.SetRouter(randn(3, MixerTestBench.In));
        bench.Slot.HardExperts = tensor(new long[] { expert, expert });
        var x = randn(2, 7, MixerTestBench.In);
        Assert.True(bench.Mixer.forward(x).allclose(bench.Experts[expert].forward(x), rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Hard_routing_sends_each_sample_to_its_own_expert()
    {
        var bench = new MixerTestBench(3, Ranks, Scalings, new RoutingSettings(RoutingMode.Hard));
        bench.Slot.HardExperts = tensor(new long[] { 2, 0 });
        var x = randn(2, 4, MixerTestBench.In);
        var y = bench.Mixer.forward(x);
        Assert.True(y[0].allclose(bench.Experts[2].forward(x[0]), rtol: 1e-5, atol: 1e-5));
        Assert.True(y[1].allclose(bench.Experts[0].forward(x[1]), rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Zero_router_gives_the_mean_of_the_experts()
    {
        var bench = new MixerTestBench(4, Ranks, Scalings, new RoutingSettings(RoutingMode.Soft));
        var x = randn(3, 4, MixerTestBench.In);
        var mean = (bench.Experts[0].forward(x) + bench.Experts[1].forward(x) + bench.Experts[2].forward(x)) / 3;
        Assert.True(bench.Mixer.forward(x).allclose(mean, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Soft_routing_weights_experts_by_the_router_softmax()
    {
        var bench = new MixerTestBench(5, Ranks, Scalings, new RoutingSettings(RoutingMode.Soft, Temperature: 0.7));
        var w = randn(3, MixerTestBench.In);
        bench.SetRouter(w);
        var x = randn(2, 6, MixerTestBench.In);
        var gates = (x.matmul(w.t()) / 0.7).softmax(-1);
        Assert.True(bench.Mixer.forward(x).allclose(bench.Reference(x, gates), rtol: 1e-5, atol: 1e-5));
    }

    // Expected top-k gates worked out per token in plain C# (no torch.topk): keep the k largest, renormalise.
    private static Tensor ManualTopK(Tensor p, int k, bool renormalize)
    {
        var shape = p.shape;
        var flat = p.reshape(-1, shape[^1]).data<float>().ToArray();
        int e = (int)shape[^1];
        var gates = new float[flat.Length];
        for (int t = 0; t < flat.Length / e; t++)
        {
            var row = flat.Skip(t * e).Take(e).Select((v, i) => (v, i)).OrderByDescending(z => z.v).Take(k).ToArray();
            float sum = row.Sum(z => z.v);
            foreach (var (v, i) in row) gates[t * e + i] = renormalize ? v / sum : v;
        }
        return tensor(gates).reshape(shape);
    }

    [Theory]
    [InlineData(1, 3, 1, true)]     // decoding-sized: gathered experts
    [InlineData(1, 3, 2, true)]
    [InlineData(2, 40, 2, true)]    // prefill-sized: per-expert token groups
    [InlineData(2, 40, 1, true)]
    [InlineData(2, 40, 2, false)]
    [InlineData(1, 5, 2, false)]
    public void TopK_keeps_k_experts_per_token_and_renormalises(int batch, int tokens, int k, bool renormalize)
    {
        var bench = new MixerTestBench(6, Ranks, Scalings, new RoutingSettings(RoutingMode.TopK, k, renormalize));
        var w = randn(3, MixerTestBench.In) * 2;
        bench.SetRouter(w);
        var x = randn(batch, tokens, MixerTestBench.In);
        var gates = ManualTopK(x.matmul(w.t()).softmax(-1), k, renormalize);
        Assert.Equal(batch * tokens * (3 - k), (int)gates.eq(0).sum().item<long>());
        Assert.True(bench.Mixer.forward(x).allclose(bench.Reference(x, gates), rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void TopK_with_k_equal_E_equals_soft_routing()
    {
        var soft = new MixerTestBench(7, Ranks, Scalings, new RoutingSettings(RoutingMode.Soft));
        var top = new MixerTestBench(7, Ranks, Scalings, new RoutingSettings(RoutingMode.TopK, 3));
        var w = randn(3, MixerTestBench.In);
        soft.SetRouter(w);
        top.SetRouter(w);
        Assert.True(soft.BaseWeight.allclose(top.BaseWeight, rtol: 0, atol: 0), "both benches must be built from the same weights");
        var x = randn(2, 9, MixerTestBench.In);
        Assert.True(top.Mixer.forward(x).allclose(soft.Mixer.forward(x), rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Straight_through_uses_topk_forward_and_the_dense_softmax_gradient_backward()
    {
        var bench = new MixerTestBench(8, Ranks, Scalings, new RoutingSettings(RoutingMode.StraightThrough, 2));
        var w = randn(3, MixerTestBench.In);
        bench.SetRouter(w);
        var x = randn(2, 5, MixerTestBench.In);
        var upstream = randn(2, 5, MixerTestBench.Out);

        var y = bench.Mixer.forward(x);
        var p = x.matmul(w.t()).softmax(-1);
        var topGates = ManualTopK(p, 2, true);
        Assert.True(y.allclose(bench.Reference(x, topGates), rtol: 1e-4, atol: 1e-5), "forward must use the top-k weights");
        (y * upstream).sum().backward();
        var stGrad = bench.Slot.Router.weight.grad!.clone();

        // Reference: dL/dg evaluated at the top-k gates, pushed through the dense softmax only.
        var g = topGates.clone().requires_grad_(true);
        (bench.Reference(x, g) * upstream).sum().backward();
        var dLdg = g.grad!.clone();
        var wLeaf = w.clone().requires_grad_(true);
        var pDense = x.matmul(wLeaf.t()).softmax(-1);
        pDense.backward(new[] { dLdg });
        Assert.True(stGrad.allclose(wLeaf.grad!, rtol: 1e-4, atol: 1e-6));
        Assert.True(stGrad.abs().max().item<float>() > 1e-4, "the router must receive a gradient");
    }

    [Fact]
    public void Experts_of_different_ranks_pad_with_zeros_and_round_trip()
    {
        var bench = new MixerTestBench(9, Ranks, Scalings, new RoutingSettings(RoutingMode.Soft));
        Assert.Equal(new long[] { 3, 4, MixerTestBench.In }, bench.Mixer.lora_A.shape);
        Assert.Equal(0.0f, bench.Mixer.lora_A[0].narrow(0, 2, 2).abs().max().item<float>());
        var (a, b) = bench.Mixer.GetExpert(2)!.Value;
        Assert.True(a.allclose(bench.Experts[2].lora_A.detach(), rtol: 0, atol: 0));
        Assert.True(b.allclose(bench.Experts[2].lora_B.detach(), rtol: 0, atol: 0));
    }

    [Fact]
    public void An_expert_that_lacks_the_module_contributes_nothing()
    {
        manual_seed(10);
        var slot = new RoutingSlot("r", 0, new Router(2, 6, CPU), new RoutingSettings(RoutingMode.Hard));
        var linear = nn.Linear(6, 5);
        var mixer = new MixerLinear("m", linear, new (int, double)?[] { (2, 1.0), null }, slot, ownsSlot: true);
        mixer.SetExpert(0, randn(2, 6), randn(5, 2));
        slot.HardExperts = tensor(new long[] { 1 });
        var x = randn(1, 3, 6);
        Assert.True(mixer.forward(x).allclose(linear.forward(x), rtol: 0, atol: 1e-6));
        Assert.Throws<InvalidOperationException>(() => mixer.SetExpert(1, randn(2, 6), randn(5, 2)));
    }

    [Fact]
    public void Expert_weights_of_the_wrong_shape_name_the_module_and_both_shapes()
    {
        var bench = new MixerTestBench(11, Ranks, Scalings, new RoutingSettings(RoutingMode.Soft));
        var e = Assert.Throws<LoraMixer.Errors.AdapterMismatchException>(() => bench.Mixer.SetExpert(0, randn(2, 7), randn(5, 2)));
        Assert.Contains("test.q_proj", e.Message);
        Assert.Contains("[2, 7]", e.Message);
        Assert.Contains("[5, 6]", e.Message);
    }

    [Fact]
    public void TopK_larger_than_the_number_of_experts_is_an_error()
    {
        var e = Assert.Throws<ArgumentException>(() => new RoutingSettings(RoutingMode.TopK, 4).Validate(3));
        Assert.Contains("top-k", e.Message);
    }
}
