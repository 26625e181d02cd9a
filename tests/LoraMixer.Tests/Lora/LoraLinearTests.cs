using LoraMixer.Lora;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Lora;

public sealed class LoraLinearTests
{
    private static (LoraLinear Lora, Tensor X) Make(long seed, double scaling = 2.0)
    {
        manual_seed(seed);
        var linear = nn.Linear(6, 5, hasBias: true);
        var lora = new LoraLinear(linear, rank: 3, scaling: scaling);
        lora.SetWeights(randn(3, 6), randn(5, 3));
        return (lora, randn(2, 4, 6));
    }

    [Fact]
    public void Fresh_adapter_is_a_no_op_because_B_starts_at_zero()
    {
        manual_seed(1);
        var linear = nn.Linear(6, 5, hasBias: true);
        var x = randn(3, 6);
        var expected = linear.forward(x);
        var lora = new LoraLinear(linear, rank: 4, scaling: 2.0);
        Assert.Equal(0.0, lora.lora_B.abs().max().item<float>());
        Assert.True(lora.lora_A.abs().max().item<float>() > 0, "A must be randomly initialised");
        // Kaiming-uniform with a=√5 bounds |A| by 1/√fan_in.
        Assert.True(lora.lora_A.abs().max().item<float>() <= 1.0 / Math.Sqrt(6) + 1e-6);
        Assert.True(lora.forward(x).allclose(expected, rtol: 0, atol: 1e-7));
    }

    [Fact]
    public void Forward_equals_base_plus_scaled_BA_worked_by_hand()
    {
        var (lora, x) = Make(2, scaling: 0.5);
        var w = lora.base_layer.weight!;
        var b = lora.base_layer.bias!;
        var expected = x.matmul((w + 0.5 * lora.lora_B.matmul(lora.lora_A)).t()) + b;
        Assert.True(lora.forward(x).allclose(expected, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Merged_forward_equals_unmerged_forward_and_unmerge_restores_the_base()
    {
        var (lora, x) = Make(3);
        var before = lora.base_layer.weight!.clone();
        var unmerged = lora.forward(x);
        lora.Merge();
        Assert.True(lora.Merged);
        Assert.False(lora.base_layer.weight!.allclose(before), "merging must change the base weight");
        Assert.True(lora.forward(x).allclose(unmerged, rtol: 1e-5, atol: 1e-5));
        lora.Unmerge();
        Assert.True(lora.base_layer.weight!.allclose(before, rtol: 0, atol: 1e-6));
        Assert.True(lora.forward(x).allclose(unmerged, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Dropout_acts_only_in_training_mode()
    {
        manual_seed(4);
        var lora = new LoraLinear(nn.Linear(6, 5), rank: 2, scaling: 1.0, dropout: 0.5);
        lora.SetWeights(randn(2, 6), randn(5, 2));
        var x = randn(8, 6);
        lora.eval();
        Assert.True(lora.forward(x).allclose(lora.forward(x)));
        lora.train();
        Assert.False(lora.forward(x).allclose(lora.forward(x)), "dropout should make training forwards differ");
    }

    [Fact]
    public void Base_weights_are_frozen_and_only_A_B_receive_gradients()
    {
        var (lora, x) = Make(5);
        lora.forward(x).sum().backward();
        Assert.Null(lora.base_layer.weight!.grad);
        Assert.NotNull(lora.lora_A.grad);
        Assert.NotNull(lora.lora_B.grad);
    }

    [Fact]
    public void Rank_zero_is_rejected()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new LoraLinear(nn.Linear(4, 4), 0, 1.0));
        Assert.Contains("rank", e.Message);
    }
}
