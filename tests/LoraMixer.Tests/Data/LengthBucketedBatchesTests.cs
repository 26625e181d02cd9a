using LoraMixer.Data;

namespace LoraMixer.Tests.Data;

public sealed class LengthBucketedBatchesTests
{
    private static int[] Lengths(int n, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => random.Next(1, 200))];
    }

    [Theory]
    [InlineData(0, 4, 50)]
    [InlineData(1, 4, 50)]
    [InlineData(103, 8, 3)]
    [InlineData(1000, 16, 50)]
    [InlineData(37, 5, 1)]
    public void Every_index_appears_exactly_once_in_batches_no_larger_than_the_batch_size(int n, int batchSize, int bucketFactor)
    {
        var batches = LengthBucketedBatches.Create(Lengths(n, 1), batchSize, seed: 5, epoch: 2, bucketFactor);
        Assert.Equal(Enumerable.Range(0, n), batches.SelectMany(b => b).Order());
        Assert.All(batches, b => Assert.InRange(b.Length, 1, batchSize));
    }

    [Fact]
    public void Same_seed_and_epoch_give_the_same_batches_and_another_epoch_or_seed_differs()
    {
        var lengths = Lengths(500, 2);
        var a = LengthBucketedBatches.Create(lengths, 8, seed: 1, epoch: 0);
        var b = LengthBucketedBatches.Create(lengths, 8, seed: 1, epoch: 0);
        var nextEpoch = LengthBucketedBatches.Create(lengths, 8, seed: 1, epoch: 1);
        var otherSeed = LengthBucketedBatches.Create(lengths, 8, seed: 2, epoch: 0);
        Assert.Equal(a.Select(x => string.Join(',', x)), b.Select(x => string.Join(',', x)));
        Assert.NotEqual(a.Select(x => string.Join(',', x)), nextEpoch.Select(x => string.Join(',', x)));
        Assert.NotEqual(a.Select(x => string.Join(',', x)), otherSeed.Select(x => string.Join(',', x)));
    }

    [Fact]
    public void Bucketing_groups_similar_lengths_so_padding_is_far_below_random_batches()
    {
        var lengths = Lengths(2000, 3);
        long Padding(IEnumerable<int[]> batches) => batches.Sum(b => (long)b.Max(i => lengths[i]) * b.Length - b.Sum(i => lengths[i]));
        long bucketed = Padding(LengthBucketedBatches.Create(lengths, 16, seed: 0, epoch: 0, bucketFactor: 50));
        long unbucketed = Padding(LengthBucketedBatches.Create(lengths, 16, seed: 0, epoch: 0, bucketFactor: 1));
        Assert.True(bucketed * 5 < unbucketed, $"bucketed padding {bucketed} vs random {unbucketed}");
    }

    [Fact]
    public void Batch_order_is_shuffled_rather_than_sorted_by_length()
    {
        var lengths = Lengths(800, 4);
        var batches = LengthBucketedBatches.Create(lengths, 8, seed: 0, epoch: 0, bucketFactor: 100);
        var maxima = batches.Select(b => b.Max(i => lengths[i])).ToArray();
        Assert.NotEqual(maxima.Order(), maxima);
    }
}
