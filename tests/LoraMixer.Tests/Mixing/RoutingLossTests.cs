using LoraMixer.Mixing;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

public sealed class RoutingLossTests
{
    // Two real tokens p = [0.8, 0.2], [0.4, 0.6] and one padding token [0.5, 0.5]:
    //   p̄ = [0.6, 0.4]; top-1 experts 0 and 1 → f̄ = [0.5, 0.5]; balance = α·2·(0.3 + 0.2) = α
    //   H1 = −(0.8 ln 0.8 + 0.2 ln 0.2) = 0.5004024, H2 = −(0.4 ln 0.4 + 0.6 ln 0.6) = 0.6730117, mean 0.5867071
    private static Tensor Probabilities() => tensor(new float[] { 0.8f, 0.2f, 0.4f, 0.6f, 0.5f, 0.5f }).reshape(1, 3, 2);
    private static Tensor Mask() => tensor(new long[] { 1, 1, 0 }).reshape(1, 3);

    [Theory]
    [InlineData(1, 0.01 + 0.1 * 0.5867071)]
    [InlineData(-1, 0.01 - 0.1 * 0.5867071)]
    public void RSL_value_matches_the_hand_worked_example(int sign, double expected)
    {
        var loss = RoutingLoss.Compute(new[] { Probabilities() }, Mask(), alpha: 0.01, lambda: 0.1, entropySign: sign);
        Assert.Equal(expected, loss.item<float>(), 5);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(-1)]
    public void RSL_gradient_matches_the_hand_worked_example(int sign)
    {
        var p = Probabilities().requires_grad_(true);
        RoutingLoss.Compute(new[] { p }, Mask(), 0.01, 0.1, sign).backward();
        var grad = p.grad!.reshape(-1).data<float>().ToArray();
        float[] probs = { 0.8f, 0.2f, 0.4f, 0.6f };
        for (int i = 0; i < 4; i++)
        {
            // d balance / dp = α·E·f̄_i / n = 0.01·2·0.5/2; d mean H / dp = −(ln p + 1) / n
            double expected = 0.01 * 2 * 0.5 / 2 + sign * 0.1 * -(Math.Log(probs[i]) + 1) / 2;
            Assert.Equal(expected, grad[i], 5);
        }
        Assert.Equal(0f, grad[4]);
        Assert.Equal(0f, grad[5]);
    }

    [Fact]
    public void Padding_tokens_do_not_change_the_loss()
    {
        var other = tensor(new float[] { 0.8f, 0.2f, 0.4f, 0.6f, 0.99f, 0.01f }).reshape(1, 3, 2);
        var a = RoutingLoss.Compute(new[] { Probabilities() }, Mask(), 0.01, 0.1, 1).item<float>();
        var b = RoutingLoss.Compute(new[] { other }, Mask(), 0.01, 0.1, 1).item<float>();
        Assert.Equal(a, b, 6);
        var unmasked = RoutingLoss.Compute(new[] { other }, ones(1, 3), 0.01, 0.1, 1).item<float>();
        Assert.NotEqual(a, unmasked, 3);
    }

    [Fact]
    public void Balance_is_one_for_perfectly_balanced_routing_and_E_for_collapse()
    {
        var balanced = tensor(new float[] { 1, 0, 0, 1 }).reshape(1, 2, 2);
        var collapsed = tensor(new float[] { 1, 0, 1, 0 }).reshape(1, 2, 2);
        Assert.Equal(1f, RoutingLoss.Balance(balanced, ones(1, 2)).item<float>(), 5);
        Assert.Equal(2f, RoutingLoss.Balance(collapsed, ones(1, 2)).item<float>(), 5);
    }

    [Fact]
    public void Loss_is_averaged_over_layers()
    {
        var p1 = Probabilities();
        var p2 = tensor(new float[] { 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f }).reshape(1, 3, 2);
        double l1 = RoutingLoss.Compute(new[] { p1 }, Mask(), 0.01, 0.1, 1).item<float>();
        double l2 = RoutingLoss.Compute(new[] { p2 }, Mask(), 0.01, 0.1, 1).item<float>();
        double both = RoutingLoss.Compute(new[] { p1, p2 }, Mask(), 0.01, 0.1, 1).item<float>();
        Assert.Equal((l1 + l2) / 2, both, 5);
    }

    [Fact]
    public void Lambda_ramps_linearly_over_the_warmup()
    {
        var s = new RoutingLossSettings(Lambda: 0.2, WarmupRatio: 0.1);
        Assert.Equal(0.0, s.LambdaAt(0, 100));
        Assert.Equal(0.1, s.LambdaAt(5, 100), 10);
        Assert.Equal(0.2, s.LambdaAt(10, 100), 10);
        Assert.Equal(0.2, s.LambdaAt(70, 100), 10);
    }

    [Fact]
    public void Preservation_is_the_squared_distance_to_the_initial_experts()
    {
        var init = tensor(new float[] { 1, 2, 3 });
        var now = tensor(new float[] { 1, 4, 0 });
        Assert.Equal(4f + 9f, RoutingLoss.Preservation(new[] { (now, init) }).item<float>(), 5);
    }
}
