using LoraMixer.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Data;

public sealed class BatchCollatorTests
{
    [Fact]
    public void Collate_right_pads_and_shifts_targets_with_the_next_tokens_loss_mask()
    {
        var examples = new[]
        {
            new EncodedExample([1, 10, 11, 12, 2], [false, false, true, true, true], 0, 1),
            new EncodedExample([1, 13, 2], [false, true, true], -1, 2),
        };
        using var batch = BatchCollator.Collate(examples, padId: 3, CPU);

        Assert.Equal(new long[] { 2, 5 }, batch.InputIds.shape);
        Assert.Equal(2, batch.BatchSize);
        Assert.Equal(5, batch.SequenceLength);
        Assert.Equal(ScalarType.Int64, batch.InputIds.dtype);
        Assert.Equal(ScalarType.Int64, batch.AttentionMask.dtype);
        Assert.Equal(ScalarType.Int64, batch.TargetIds.dtype);
        Assert.Equal(ScalarType.Float32, batch.TargetMask.dtype);
        Assert.Equal(ScalarType.Int64, batch.TaskIds.dtype);

        Assert.Equal(new long[] { 1, 10, 11, 12, 2, 1, 13, 2, 3, 3 }, batch.InputIds.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 }, batch.AttentionMask.data<long>().ToArray());
        Assert.Equal(new long[] { 10, 11, 12, 2, 3, 13, 2, 3, 3, 3 }, batch.TargetIds.data<long>().ToArray());
        Assert.Equal(new float[] { 0, 1, 1, 1, 0, 1, 1, 0, 0, 0 }, batch.TargetMask.data<float>().ToArray());
        Assert.Equal(new long[] { 0, -1 }, batch.TaskIds.data<long>().ToArray());
        Assert.Equal(5, batch.TokenCount);
    }

    [Fact]
    public void Token_count_equals_the_sum_of_the_target_mask()
    {
        var random = new Random(9);
        var examples = Enumerable.Range(0, 6).Select(i =>
        {
            int n = random.Next(2, 20);
            return new EncodedExample([.. Enumerable.Range(0, n).Select(_ => random.Next(4, 30))], [.. Enumerable.Range(0, n).Select(t => t > 0 && random.Next(2) == 0)], i % 3, i);
        }).ToArray();
        using var batch = BatchCollator.Collate(examples, 0, CPU);
        Assert.Equal(examples.Sum(e => e.TargetCount), batch.TokenCount);
        Assert.Equal(batch.TokenCount, (int)batch.TargetMask.sum().item<float>());
    }

    [Fact]
    public void Disposing_the_batch_frees_every_tensor()
    {
        var batch = BatchCollator.Collate([new EncodedExample([1, 2], [false, true], -1, 1)], 0, CPU);
        Assert.Equal(new float[] { 1, 0 }, batch.TargetMask.data<float>().ToArray());
        batch.Dispose();
        Assert.All(new[] { batch.InputIds, batch.AttentionMask, batch.TargetIds, batch.TargetMask, batch.TaskIds }, t => Assert.True(t.IsInvalid));
    }

    [Fact]
    public void Empty_batch_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => BatchCollator.Collate([], 0, CPU));
    }
}
