using LoraMixer.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Training;

public sealed class GradientClippingTests
{
    [Fact]
    public void Norm_above_the_maximum_scales_all_gradients_to_exactly_the_maximum()
    {
        using var scope = NewDisposeScope();
        var a = new Parameter(zeros(2));
        var b = new Parameter(zeros(1));
        var frozen = new Parameter(zeros(3));
        a.grad = tensor(new float[] { 3f, 4f });
        b.grad = tensor(new float[] { 12f });

        double norm = GradientClipping.ClipByGlobalNorm([a, b, frozen], 6.5);

        Assert.Equal(13.0, norm, 12); // √(9 + 16 + 144)
        Assert.Equal(new[] { 1.5f, 2f }, a.grad!.data<float>().ToArray());
        Assert.Equal(new[] { 6f }, b.grad!.data<float>().ToArray());
        Assert.Null(frozen.grad);
        Assert.Equal(6.5, GradientClipping.ClipByGlobalNorm([a, b], 0), 6);
    }

    [Fact]
    public void Norm_below_the_maximum_or_clipping_off_leaves_gradients_alone()
    {
        using var scope = NewDisposeScope();
        var a = new Parameter(zeros(2));
        a.grad = tensor(new float[] { 3f, 4f });
        Assert.Equal(5.0, GradientClipping.ClipByGlobalNorm([a], 5.5), 12);
        Assert.Equal(5.0, GradientClipping.ClipByGlobalNorm([a], 0), 12);
        Assert.Equal(new[] { 3f, 4f }, a.grad!.data<float>().ToArray());
    }

    [Fact]
    public void Per_expert_clipping_scales_each_expert_by_its_own_norm_only()
    {
        using var scope = NewDisposeScope();
        // Two parameters stacked over two experts: expert 0's gradients have norm √(9 + 16 + 144) = 13,
        // expert 1's √(0.09 + 0.16) = 0.5.
        var a = new Parameter(zeros(2, 2));
        var b = new Parameter(zeros(2, 1, 1));
        a.grad = tensor(new float[] { 3f, 4f, 0.3f, 0.4f }).reshape(2, 2);
        b.grad = tensor(new float[] { 12f, 0f }).reshape(2, 1, 1);

        double norm = GradientClipping.ClipPerExpert([a, b], 6.5);

        Assert.Equal(Math.Sqrt(169 + 0.25), norm, 5); // the global norm, for the log
        Assert.Equal(new[] { 1.5f, 2f, 0.3f, 0.4f }, a.grad!.data<float>().ToArray()); // expert 0 halved, expert 1 untouched
        Assert.Equal(new[] { 6f, 0f }, b.grad!.data<float>().ToArray());
        var odd = new Parameter(zeros(3));
        odd.grad = ones(3);
        Assert.Throws<ArgumentException>(() => GradientClipping.ClipPerExpert([a, odd], 1));
    }
}
