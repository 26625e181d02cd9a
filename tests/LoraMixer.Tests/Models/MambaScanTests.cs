using LoraMixer.Models.Mamba;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Models;

public sealed class MambaScanTests
{
    private static (Tensor X, Tensor Delta, Tensor A, Tensor B, Tensor C, Tensor H0) Inputs(long batch, long d, long t, long n, double deltaScale, int seed)
    {
        var g = new Generator((ulong)seed);
        var x = randn(new[] { batch, d, t }, generator: g);
        var delta = nn.functional.softplus(randn(new[] { batch, d, t }, generator: g) - 2) * deltaScale;
        var a = (log(arange(1, n + 1, dtype: ScalarType.Float32)).repeat(d, 1) + 0.1 * randn(new[] { d, n }, generator: g)).exp().neg();
        var b = randn(new[] { batch, t, n }, generator: g);
        var c = randn(new[] { batch, t, n }, generator: g);
        var h0 = randn(new[] { batch, d, n }, generator: g);
        return (x, delta, a, b, c, h0);
    }

    private static float MaxAbsDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Theory]
    [InlineData(1, 5, 1)]
    [InlineData(2, 70, 32)]   // not a multiple of the chunk size
    [InlineData(2, 64, 32)]   // exactly two chunks
    [InlineData(1, 33, 8)]
    [InlineData(3, 20, 1)]    // chunks of one position
    public void Chunked_scan_equals_sequential_scan(int batch, int t, int chunk)
    {
        using var scope = NewDisposeScope();
        var (x, delta, a, b, c, h0) = Inputs(batch, 12, t, 8, 1.0, 17 + t);
        foreach (var start in new Tensor?[] { null, h0 })
        {
            var (ySeq, hSeq) = SelectiveScan.Sequential(x, delta, a, b, c, start);
            var (yChunk, hChunk) = SelectiveScan.Chunked(x, delta, a, b, c, start, chunk);
            Assert.Equal(ySeq.shape, yChunk.shape);
            Assert.True(MaxAbsDiff(ySeq, yChunk) < 1e-5f, $"y: {MaxAbsDiff(ySeq, yChunk)}");
            Assert.True(MaxAbsDiff(hSeq, hChunk) < 1e-5f, $"state: {MaxAbsDiff(hSeq, hChunk)}");
        }
    }

    [Fact]
    public void Chunked_scan_stays_exact_and_finite_when_decays_are_extreme()
    {
        using var scope = NewDisposeScope();
        // Δ·|A| up to several hundred per step: a naive exp(−cumsum) over a fixed chunk would overflow.
        var (x, delta, a, b, c, h0) = Inputs(2, 12, 90, 16, 30.0, 5);
        var chunks = SelectiveScan.Chunks(delta, a, 32);
        Assert.True(chunks.Count > 90 / 32 + 1, "the decay bound must shorten chunks");
        Assert.Equal(90, chunks.Sum(ch => ch.Length));
        var (ySeq, hSeq) = SelectiveScan.Sequential(x, delta, a, b, c, h0);
        var (yChunk, hChunk) = SelectiveScan.Chunked(x, delta, a, b, c, h0, 32);
        Assert.True(yChunk.isfinite().all().item<bool>());
        float scale = ySeq.abs().max().item<float>();
        Assert.True(MaxAbsDiff(ySeq, yChunk) < 1e-5f * Math.Max(1, scale), $"y: {MaxAbsDiff(ySeq, yChunk)} (scale {scale})");
        Assert.True(MaxAbsDiff(hSeq, hChunk) < 1e-5f * Math.Max(1, scale), $"state: {MaxAbsDiff(hSeq, hChunk)}");
    }

    [Fact]
    public void Chunked_scan_gradients_equal_sequential_scan_gradients()
    {
        using var scope = NewDisposeScope();
        var inputs = Inputs(2, 6, 45, 4, 1.0, 11);
        Tensor[] Gradients(bool chunked)
        {
            var leaves = new[] { inputs.X, inputs.Delta, inputs.A, inputs.B, inputs.C, inputs.H0 }
                .Select(t => t.detach().clone().requires_grad_(true)).ToArray();
            var (y, h) = chunked
                ? SelectiveScan.Chunked(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], 16)
                : SelectiveScan.Sequential(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5]);
            (y.pow(2).sum() + h.sum()).backward();
            return leaves.Select(l => l.grad!).ToArray();
        }
        var sequential = Gradients(false);
        var chunked = Gradients(true);
        for (int i = 0; i < sequential.Length; i++)
        {
            float scale = Math.Max(1, sequential[i].abs().max().item<float>());
            Assert.True(MaxAbsDiff(sequential[i], chunked[i]) < 1e-5f * scale, $"input {i}: {MaxAbsDiff(sequential[i], chunked[i])} (scale {scale})");
        }
    }

    [Fact]
    public void Chunks_cover_the_sequence_and_respect_the_maximum_length()
    {
        using var scope = NewDisposeScope();
        var (_, delta, a, _, _, _) = Inputs(1, 4, 100, 4, 0.01, 3);
        var chunks = SelectiveScan.Chunks(delta, a, 32);
        Assert.Equal(new (long, long)[] { (0, 32), (32, 32), (64, 32), (96, 4) }, chunks);
    }

    [Theory]
    [InlineData(1, 1536, 16, 8)]   // mamba-130m
    [InlineData(1, 128, 8, 16)]    // tiny models: the longest chunk
    [InlineData(1, 256, 16, 16)]   // 16·256·16 = 65536 fits exactly
    [InlineData(64, 5120, 16, 8)]  // never below 8
    public void The_automatic_chunk_length_fits_the_cache_budget(long batch, long inner, long state, int expected) =>
        Assert.Equal(expected, SelectiveScan.AutoChunkSize(batch, inner, state));

    [Fact]
    public void One_sequential_step_is_the_recurrence_written_out()
    {
        using var scope = NewDisposeScope();
        var (x, delta, a, b, c, h0) = Inputs(1, 3, 1, 2, 1.0, 9);
        var (y, h) = SelectiveScan.Sequential(x, delta, a, b, c, h0);
        for (int d = 0; d < 3; d++)
        {
            double yd = 0;
            for (int n = 0; n < 2; n++)
            {
                double dt = delta[0, d, 0].item<float>();
                double expected = Math.Exp(dt * a[d, n].item<float>()) * h0[0, d, n].item<float>() + dt * b[0, 0, n].item<float>() * x[0, d, 0].item<float>();
                Assert.Equal(expected, h[0, d, n].item<float>(), 5);
                yd += expected * c[0, 0, n].item<float>();
            }
            Assert.Equal(yd, y[0, d, 0].item<float>(), 5);
        }
    }
}
