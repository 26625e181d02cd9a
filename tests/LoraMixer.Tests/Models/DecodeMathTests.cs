using LoraMixer.Models.Decoding;

namespace LoraMixer.Tests.Models;

/// <summary>The decode kernels' matrix × vectors product and parallel loop against plain double-precision sums.</summary>
public sealed class DecodeMathTests
{
    // Sizes with and without a tail after the chunks of 8 floats; batches across the groups of four vectors and the
    // four-row products (from 12 vectors on).
    [Theory]
    [InlineData(576, 1, 2)]
    [InlineData(576, 9, 2)]
    [InlineData(576, 13, 2)]
    [InlineData(37, 15, 1)]
    [InlineData(37, 5, 2)]
    [InlineData(50, 4, 1)]
    [InlineData(8, 3, 2)]
    [InlineData(3, 2, 2)]
    public unsafe void MatMul_MatchesDoubleSums_ForFusedWeightsWithBias(int inDim, int batch, int workers)
    {
        var rng = new Random(inDim * 31 + batch);
        int[] outs = [13, 70, 5];
        var weights = outs.Select(o => Random(rng, o * inDim)).ToArray();
        var bias = Random(rng, outs[1]);
        var x = Random(rng, batch * inDim);
        long stride = outs.Sum();
        var y = new float[batch * stride];
        fixed (float* w0 = weights[0], w1 = weights[1], w2 = weights[2], b1 = bias, xp = x, yp = y)
        {
            Span<Projection> projections =
            [
                new((nint)w0, 0, outs[0], (nint)yp, stride),
                new((nint)w1, (nint)b1, outs[1], (nint)(yp + outs[0]), stride),
                new((nint)w2, 0, outs[2], (nint)(yp + outs[0] + outs[1]), stride),
            ];
            DecodeMath.MatMul(projections, xp, inDim, batch, workers);
        }
        for (int b = 0; b < batch; b++)
        {
            long column = 0;
            for (int j = 0; j < outs.Length; j++)
                for (int r = 0; r < outs[j]; r++, column++)
                {
                    double expected = j == 1 ? bias[r] : 0;
                    for (int i = 0; i < inDim; i++) expected += (double)weights[j][r * inDim + i] * x[b * inDim + i];
                    Assert.True(Math.Abs(y[b * stride + column] - expected) < 1e-4, $"b={b} weight {j} row {r}: {y[b * stride + column]} vs {expected}");
                }
        }
    }

    // Serving decodes a row in batches of every size; its result must be the very same floats in each.
    [Fact]
    public unsafe void MatMul_RowResult_DoesNotDependOnTheBatch()
    {
        const int inDim = 600, outDim = 700;
        var rng = new Random(5);
        var w = Random(rng, outDim * inDim);
        var x = Random(rng, 20 * inDim);
        float[] Row(int batch, int row)
        {
            var y = new float[batch * outDim];
            fixed (float* wp = w, xp = x, yp = y)
            {
                Span<Projection> one = [new((nint)wp, 0, outDim, (nint)yp, outDim)];
                DecodeMath.MatMul(one, xp, inDim, batch, 2);
            }
            return y.AsSpan(row * outDim, outDim).ToArray();
        }
        // Both the one-row and the four-row products (from 12 vectors on), odd batches included.
        var alone = Row(1, 0);
        for (int batch = 2; batch <= 20; batch++) Assert.Equal(alone, Row(batch, 0));
        Assert.Equal(Row(6, 5), Row(13, 5));
        Assert.Equal(Row(19, 18), Row(20, 18));
    }

    [Fact]
    public async Task ParallelFor_RunsEveryPartOnce_FromConcurrentCallers()
    {
        // Several callers at once: one uses the resident workers, the others fall back; all must see every part once.
        var tasks = Enumerable.Range(0, 6).Select(caller => Task.Run(() =>
        {
            for (int round = 0; round < 200; round++)
            {
                int parts = 1 + (caller + round) % 11;
                var counts = new int[parts];
                DecodeParallel.For(parts, 2, part => Interlocked.Increment(ref counts[part]));
                Assert.All(counts, c => Assert.Equal(1, c));
            }
        })).ToArray();
        await Task.WhenAll(tasks);
    }

    [Fact]
    public void ParallelFor_ReportsAPartsException_AndStaysUsable()
    {
        var error = Assert.Throws<AggregateException>(() =>
            DecodeParallel.For(4, 2, part => { if (part == 3) throw new InvalidOperationException("part 3 failed"); }));
        Assert.Contains("part 3 failed", error.InnerException!.Message);
        int sum = 0;
        DecodeParallel.For(5, 2, part => Interlocked.Add(ref sum, part));
        Assert.Equal(10, sum);
    }

    private static float[] Random(Random rng, int count) => Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
}
