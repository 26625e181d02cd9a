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
}
