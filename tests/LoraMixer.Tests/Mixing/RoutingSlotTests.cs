using LoraMixer.Mixing;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

public sealed class RoutingSlotTests
{
    [Fact]
    public void One_hard_expert_id_applies_to_every_sample_of_the_batch()
    {
        using var scope = NewDisposeScope();
        using var slot = new RoutingSlot("r", 0, new Router(3, 4, CPU), new RoutingSettings(RoutingMode.Hard));
        var h = randn(2, 5, 4);
        slot.HardExperts = tensor(new long[] { 1 });
        slot.Route(h);
        var single = slot.Current.Gates!.clone();
        slot.HardExperts = tensor(new long[] { 1, 1 });
        slot.Route(h);
        Assert.True(single.allclose(slot.Current.Gates!, rtol: 0, atol: 0), "a single id must equal the same id given per sample");
        Assert.Equal(new[] { 0f, 1f, 0f }, single[1, 4].data<float>().ToArray());

        slot.HardExperts = tensor(new long[] { 0, 1, 2 });
        var e = Assert.Throws<ArgumentException>(() => slot.Route(h));
        Assert.Contains("3 expert ids for a batch of 2", e.Message);
    }
}
