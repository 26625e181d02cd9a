using LoraMixer.Models.Decoding;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
        // Both the one-row and the four-row products (from 12 vectors on), odd batches included; on AVX-512 machines
        // every batch from 2 on takes the paired kernel, so this also compares it with the one-vector product.
        var alone = Row(1, 0);
        for (int batch = 2; batch <= 20; batch++) Assert.Equal(alone, Row(batch, 0));
        Assert.Equal(Row(6, 5), Row(13, 5));
        Assert.Equal(Row(19, 18), Row(20, 18));
    }

    // The paired AVX-512 kernel must give the 256-bit kernel's floats exactly (both are used by the same model: batch 1
    // never pairs): sizes with and without a tail, a bias, odd batches, row counts off the 4-row tiles and 64-row blocks.
    [Theory]
    [InlineData(576, 133, 2, 8)]
    [InlineData(576, 70, 1, 40)]
    [InlineData(603, 70, 2, 13)]
    [InlineData(603, 9, 2, 31)]
    [InlineData(16, 5, 1, 2)]
    [InlineData(1536, 67, 2, 3)]
    [InlineData(1536, 131, 2, 8)]
    [InlineData(1536, 70, 1, 9)]
    public unsafe void PairedKernel_EqualsThe256BitKernel_Bitwise(int inDim, int outDim, int workers, int batch)
    {
        if (!DecodeMath.UsePairs)
        {
            Assert.False(Avx512DQ.IsSupported, "AVX-512 present but the paired kernel is off");
            return;
        }
        var rng = new Random(inDim + outDim + batch);
        var w = Random(rng, outDim * inDim);
        var bias = Random(rng, outDim);
        var x = Random(rng, batch * inDim);
        float[] Product(bool pairs)
        {
            var y = new float[batch * (outDim + 3)];
            DecodeMath.UsePairs = pairs;
            try
            {
                fixed (float* wp = w, bp = bias, xp = x, yp = y)
                {
                    Span<Projection> one = [new((nint)wp, (nint)bp, outDim, (nint)yp, outDim + 3)];
                    DecodeMath.MatMul(one, xp, inDim, batch, workers);
                }
            }
            finally
            {
                DecodeMath.UsePairs = true;
            }
            return y;
        }
        var paired = Product(true);
        var plain = Product(false);
        for (int i = 0; i < paired.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(paired[i]) == BitConverter.SingleToInt32Bits(plain[i]),
                $"output {i} (vector {i / (outDim + 3)}, row {i % (outDim + 3)}): {paired[i]:R} vs {plain[i]:R}");
    }

    // The paired kernel's eight-at-once horizontal sums reproduce Vector256.Sum's order, which must be the tree
    // ((a0+a1)+(a2+a3))+((a4+a5)+(a6+a7)); magnitudes over ten decades make any other order round differently.
    [Fact]
    public void Sums_AddInVector256SumsOrder()
    {
        if (!Avx.IsSupported) return;
        var rng = new Random(11);
        int treeMismatches = 0, otherOrderMismatches = 0;
        for (int t = 0; t < 20_000; t++)
        {
            var v = new Vector256<float>[8];
            for (int k = 0; k < 8; k++)
            {
                var a = new float[8];
                for (int i = 0; i < 8; i++) a[i] = (float)((rng.NextDouble() - 0.5) * Math.Pow(10, rng.Next(-3, 8)));
                v[k] = Vector256.Create(a);
                float sum = Vector256.Sum(v[k]);
                float tree = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
                float other = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
                if (BitConverter.SingleToInt32Bits(sum) != BitConverter.SingleToInt32Bits(tree)) treeMismatches++;
                if (BitConverter.SingleToInt32Bits(sum) != BitConverter.SingleToInt32Bits(other)) otherOrderMismatches++;
            }
            var sums = DecodeMath.Sums(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]);
            for (int k = 0; k < 8; k++)
                Assert.Equal(BitConverter.SingleToInt32Bits(Vector256.Sum(v[k])), BitConverter.SingleToInt32Bits(sums.GetElement(k)));
        }
        Assert.Equal(0, treeMismatches);
        Assert.True(otherOrderMismatches > 1000, $"only {otherOrderMismatches} sums depend on the order: the check cannot tell orders apart");
    }

    // The MLP's SiLU(gate)·up and the RMS norm, vectorised with scalar tails, against double-precision formulas; a row's
    // result must not depend on the rows around it (the SiLU's vector chunks start at each row).
    [Theory]
    [InlineData(1, 64)]
    [InlineData(3, 37)]
    [InlineData(2, 5)]
    public unsafe void SiluMul_And_RmsNorm_MatchTheFormulas(int rows, int n)
    {
        var rng = new Random(rows * 100 + n);
        var gate = Random(rng, rows * n).Select(v => v * 12).ToArray();
        var up = Random(rng, rows * n);
        var expected = gate.Select((g, i) => g / (1 + Math.Exp(-(double)g)) * up[i]).ToArray();
        var lastRowAlone = gate.AsSpan((rows - 1) * n).ToArray();
        fixed (float* g = gate, u = up, alone = lastRowAlone)
        {
            DecodeMath.SiluMul(g, u, rows, n);
            DecodeMath.SiluMul(alone, u + (rows - 1) * n, 1, n);
        }
        for (int i = 0; i < gate.Length; i++)
            Assert.True(Math.Abs(gate[i] - expected[i]) <= 2e-6 * Math.Max(1, Math.Abs(expected[i])), $"silu {i}: {gate[i]} vs {expected[i]}");
        Assert.Equal(lastRowAlone, gate.AsSpan((rows - 1) * n).ToArray());

        var x = Random(rng, n);
        var w = Random(rng, n);
        var y = new float[n];
        fixed (float* xp = x, wp = w, yp = y) DecodeMath.RmsNorm(xp, wp, yp, n, 1e-5f);
        double scale = 1 / Math.Sqrt(x.Select(v => (double)v * v).Average() + 1e-5);
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(y[i] - w[i] * x[i] * scale) < 1e-5, $"norm {i}: {y[i]} vs {w[i] * x[i] * scale}");
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
