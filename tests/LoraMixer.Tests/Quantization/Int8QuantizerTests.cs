using LoraMixer.Lora;
using LoraMixer.Models.Decoding;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;
using LoraMixer.Models;
using LoraMixer.Quantization;
using LoraMixer.Tests.Lora;
using LoraMixer.Tests.Models;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Quantization;

/// <summary>Weight-only int8 (<c>--quantize int8</c>): the quantization itself, the kernels' int8 products, and decoding.</summary>
public sealed class Int8QuantizerTests
{
    private const float Tolerance = 1e-4f;

    [Fact]
    public unsafe void Quantization_matches_hand_values()
    {
        // One row of 10 inputs in groups of 8: scales max|w|/127 per group; the last group holds two inputs.
        float[] w = [1.27f, -0.5f, 0.3f, 0f, 0f, 0f, 0f, 0.01f, -2.54f, 0f];
        Int8Matrix m;
        fixed (float* p = w) m = Int8Matrix.QuantizeInPlace(p, 1, 10, 8);
        var view = m.View;
        var q = new sbyte[10];
        for (int i = 0; i < 10; i++) q[i] = ((sbyte*)view.Values)[i];
        float s0 = ((float*)view.Scales)[0], s1 = ((float*)view.Scales)[1];
        Assert.Equal(new sbyte[] { 127, -50, 30, 0, 0, 0, 0, 1, -127, 0 }, q);
        Assert.Equal(1.27f / 127f, s0);
        Assert.Equal(2.54f / 127f, s1);
        Assert.Equal(new[] { 127 * s0, -50 * s0, 30 * s0, 0f, 0f, 0f, 0f, 1 * s0, -127 * s1, 0 * s1 }, w);
        Assert.Equal(10 + 2 * 4, m.Bytes);
        nint address;
        var pinned = GC.AllocateArray<float>(10, pinned: true);
        fixed (float* p = pinned) address = (nint)p;
        Assert.Throws<ArgumentOutOfRangeException>(() => Int8Matrix.QuantizeInPlace((float*)address, 1, 10, 12));
    }

    [Fact]
    public unsafe void Every_dequantized_weight_is_within_half_a_step_of_the_original()
    {
        var rng = new Random(3);
        int rows = 16, columns = 70, group = 32; // groups of 32, 32 and 6
        var original = Enumerable.Range(0, rows * columns).Select(_ => (float)(rng.NextDouble() * 2 - 1) * (rng.Next(4) + 1)).ToArray();
        var w = (float[])original.Clone();
        Int8Matrix m;
        fixed (float* p = w) m = Int8Matrix.QuantizeInPlace(p, rows, columns, group);
        var view = m.View;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
            {
                int g = c / group;
                float max = 0;
                for (int i = g * group; i < Math.Min(columns, (g + 1) * group); i++) max = Math.Max(max, Math.Abs(original[r * columns + i]));
                float step = max / 127f;
                Assert.Equal(step, ((float*)view.Scales)[r * view.GroupsPerRow + g]);
                Assert.True(Math.Abs(w[r * columns + c] - original[r * columns + c]) <= step / 2 * 1.0001f, $"row {r}, column {c}");
            }
        fixed (float* p = w) Assert.True(m.Matches(p));
        w[5] += 1e-3f;
        fixed (float* p = w) Assert.False(m.Matches(p));
    }

    // The int8 product against double sums over the dequantized weight, and batch independence: every row of a batch
    // equals, bit for bit, the same vector multiplied alone (serving decodes a request in batches of every size).
    [Theory]
    [InlineData(72, 2)]
    [InlineData(64, 1)]
    [InlineData(37, 2)]
    public unsafe void Int8_products_match_double_sums_and_do_not_depend_on_the_batch(int inDim, int workers)
    {
        var rng = new Random(inDim);
        int outDim = 301; // a last row outside the blocks of four
        var w = Enumerable.Range(0, outDim * inDim).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var bias = Enumerable.Range(0, outDim).Select(_ => (float)rng.NextDouble()).ToArray();
        Int8Matrix m;
        fixed (float* p = w) m = Int8Matrix.QuantizeInPlace(p, outDim, inDim, 32); // w now holds q · scale
        float[] Product(float[] x, int batch)
        {
            var y = new float[batch * outDim];
            fixed (float* wp = w, bp = bias, xp = x, yp = y)
                DecodeMath.MatMul([new Projection((nint)wp, (nint)bp, outDim, (nint)yp, outDim, m.View)], xp, inDim, batch, workers);
            return y;
        }
        foreach (int batch in new[] { 1, 3, 4, 7, 12, 13, 20 })
        {
            var x = Enumerable.Range(0, batch * inDim).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
            var y = Product(x, batch);
            for (int b = 0; b < batch; b++)
            {
                var alone = Product(x.AsSpan(b * inDim, inDim).ToArray(), 1);
                Assert.Equal(alone, y.AsSpan(b * outDim, outDim).ToArray());
                for (int r = 0; r < outDim; r += 7)
                {
                    double sum = bias[r];
                    for (int i = 0; i < inDim; i++) sum += (double)w[r * inDim + i] * x[b * inDim + i];
                    Assert.True(Math.Abs(sum - y[b * outDim + r]) < 1e-5, $"batch {batch}, row {r}: {y[b * outDim + r]} vs {sum}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(DecodeKernelTests.Models), MemberType = typeof(DecodeKernelTests))]
    public void Quantized_llama_decoding_on_the_kernel_matches_the_torchsharp_path(string name)
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load(name).Dir);
        var before = Logits(model, kernel: false);
        var summary = Int8Quantizer.Quantize(model);
        int layers = model.Config.NumHiddenLayers;
        Assert.Equal(7 * layers + 1, summary.Matrices);
        Assert.True(summary.Int8Bytes < summary.Fp32Bytes / 3, summary.ToString());
        var reference = Logits(model, kernel: false);
        var kernel = Logits(model, kernel: true);
        Assert.True(MaxAbsDiff(reference, kernel) < Tolerance, $"{name}: max |diff| = {MaxAbsDiff(reference, kernel)}");
        // Quantization changed the model, a little.
        float change = MaxAbsDiff(before, reference);
        Assert.True(change > 0 && change < 0.5f, $"{name}: int8 moved the logits by {change}");
    }

    [Fact]
    public void Quantized_mamba_decoding_on_the_kernel_matches_the_torchsharp_path()
    {
        using var model = MambaLoader.Load(Path.Combine(TestPaths.Fixtures, "models", "tiny-mamba"));
        var summary = Int8Quantizer.Quantize(model);
        Assert.Equal(4 * model.Config.NumHiddenLayers + 1, summary.Matrices);
        var reference = Logits(model, kernel: false);
        var kernel = Logits(model, kernel: true);
        Assert.True(MaxAbsDiff(reference, kernel) < Tolerance, $"max |diff| = {MaxAbsDiff(reference, kernel)}");
    }

    [Fact]
    public unsafe void The_kernel_reads_the_int8_copy()
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
        Int8Quantizer.Quantize(model);
        var first = Logits(model, kernel: true);
        // Doubling every scale of the int8 copies changes what the kernel computes, not the fp32 weights.
        foreach (var m in Int8Quantizer.Of(model)!.Matrices)
        {
            var view = m.View;
            for (long i = 0; i < (long)m.Rows * view.GroupsPerRow; i++) ((float*)view.Scales)[i] *= 2;
        }
        Assert.True(MaxAbsDiff(first, Logits(model, kernel: true)) > 1e-2f);
        Assert.True(MaxAbsDiff(first, Logits(model, kernel: false)) < Tolerance);
    }

    [Fact]
    public void A_lora_merged_after_quantization_is_read_in_fp32()
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
        Int8Quantizer.Quantize(model);
        Logits(model, kernel: true); // the kernel has read the int8 copies once
        foreach (var lora in RandomLoras.Attach(model, n => n.EndsWith(".q_proj") || n.EndsWith(".down_proj"))) lora.Merge();
        var reference = Logits(model, kernel: false);
        var kernel = Logits(model, kernel: true);
        Assert.True(MaxAbsDiff(reference, kernel) < Tolerance, $"max |diff| = {MaxAbsDiff(reference, kernel)}");
    }

    [Fact]
    public void A_model_is_quantized_once()
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
        Int8Quantizer.Quantize(model);
        Assert.Throws<InvalidOperationException>(() => Int8Quantizer.Quantize(model));
    }

    // Logits of a 5-token prompt and of 8 decoding steps after it, kernel on or off.
    private static List<float[]> Logits(ICausalLM model, bool kernel)
    {
        SetKernel(model, kernel);
        using var noGrad = no_grad();
        using var cache = model.CreateCache(1, 16);
        var rows = new List<float[]>();
        using (var scope = NewDisposeScope())
            rows.Add(model.Forward(tensor(new long[,] { { 1, 40, 41, 42, 7 } }), null, cache, lastPositionOnly: true).data<float>().ToArray());
        for (int i = 0; i < 8; i++)
        {
            using var scope = NewDisposeScope();
            rows.Add(model.Forward(tensor(new long[,] { { (i * 37 + 3) % model.VocabSize } }), null, cache, lastPositionOnly: true).data<float>().ToArray());
        }
        SetKernel(model, true);
        return rows;
    }

    private static void SetKernel(ICausalLM model, bool on)
    {
        switch (model)
        {
            case LlamaForCausalLM llama: llama.UseDecodeKernel = on; break;
            case MambaForCausalLM mamba: mamba.UseDecodeKernel = on; mamba.UsePrefillKernel = on; break;
        }
    }

    private static float MaxAbsDiff(List<float[]> a, List<float[]> b) =>
        a.Zip(b).Max(p => p.First.Zip(p.Second).Max(x => Math.Abs(x.First - x.Second)));
}
