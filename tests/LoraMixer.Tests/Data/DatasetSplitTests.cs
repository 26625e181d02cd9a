using LoraMixer.Data;

namespace LoraMixer.Tests.Data;

public sealed class DatasetSplitTests
{
    private static readonly int[] Items = [.. Enumerable.Range(100, 50)];

    [Fact]
    public void Holdout_partitions_items_keeping_order_and_the_requested_size()
    {
        var (train, eval) = DatasetSplit.Holdout(Items, 0.2, seed: 3);
        Assert.Equal(10, eval.Count);
        Assert.Equal(40, train.Count);
        Assert.Equal(Items, train.Concat(eval).Order());
        Assert.Equal(train.Order(), train);
        Assert.Equal(eval.Order(), eval);
    }

    [Fact]
    public void Holdout_is_deterministic_in_the_seed()
    {
        var a = DatasetSplit.Holdout(Items, 7, seed: 1);
        var b = DatasetSplit.Holdout(Items, 7, seed: 1);
        var c = DatasetSplit.Holdout(Items, 7, seed: 2);
        Assert.Equal(a.Eval, b.Eval);
        Assert.NotEqual(a.Eval, c.Eval);
        Assert.Equal(7, a.Eval.Count);
    }

    [Fact]
    public void Holdout_of_everything_or_nothing_and_out_of_range_requests()
    {
        Assert.Empty(DatasetSplit.Holdout(Items, 0.0, 0).Eval);
        Assert.Empty(DatasetSplit.Holdout(Items, 50, 0).Train);
        Assert.Throws<ArgumentOutOfRangeException>(() => DatasetSplit.Holdout(Items, 51, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => DatasetSplit.Holdout(Items, 1.5, 0));
    }
}
