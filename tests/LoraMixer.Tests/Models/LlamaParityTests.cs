using LoraMixer.Models;
using LoraMixer.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Models;

public sealed class LlamaParityTests
{
    private const float Tolerance = 1e-4f;

    public static TheoryData<string> Models() => new(ReferenceFixture.Names);

    private static float[,] Logits(LlamaForCausalLM model, long[] ids)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var logits = model.Forward(tensor(ids, new long[] { 1, ids.Length }))[0];
        return ToMatrix(logits);
    }

    private static float[,] ToMatrix(Tensor t)
    {
        var data = t.contiguous().data<float>().ToArray();
        int rows = (int)t.shape[0], cols = (int)t.shape[1];
        var m = new float[rows, cols];
        Buffer.BlockCopy(data, 0, m, 0, data.Length * sizeof(float));
        return m;
    }

    private static float MaxAbsDiff(float[,] actual, float[][] expected, int actualRowOffset = 0)
    {
        float max = 0;
        for (int r = 0; r < expected.Length; r++)
            for (int c = 0; c < expected[r].Length; c++)
                max = Math.Max(max, Math.Abs(actual[r + actualRowOffset, c] - expected[r][c]));
        return max;
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Logits_match_the_independent_pytorch_reference(string name)
    {
        var fixture = ReferenceFixture.Load(name);
        using var model = LlamaLoader.Load(fixture.Dir);
        foreach (var (ids, expected) in fixture.Cases)
        {
            var actual = Logits(model, ids);
            Assert.Equal(expected.Length, actual.GetLength(0));
            Assert.Equal(expected[0].Length, actual.GetLength(1));
            float diff = MaxAbsDiff(actual, expected);
            Assert.True(diff < Tolerance, $"{name}, {ids.Length} tokens: max |diff| = {diff}");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Kv_cache_decoding_equals_full_recomputation(string name)
    {
        var fixture = ReferenceFixture.Load(name);
        using var model = LlamaLoader.Load(fixture.Dir);
        var ids = fixture.Cases.OrderByDescending(c => c.Ids.Length).First().Ids;
        var full = Logits(model, ids);

        using var noGrad = no_grad();
        using var cache = model.CreateCache(1, ids.Length);
        int prefill = 5, chunk = 3;
        var rows = new List<float[,]>();
        using (var scope = NewDisposeScope())
            rows.Add(ToMatrix(model.Forward(tensor(ids[..prefill], new long[] { 1, prefill }), null, cache)[0]));
        // a multi-token chunk after a prefix (exercises the causal mask with past > 0) ...
        using (var scope = NewDisposeScope())
            rows.Add(ToMatrix(model.Forward(tensor(ids[prefill..(prefill + chunk)], new long[] { 1, chunk }), null, cache)[0]));
        // ... then one token at a time
        for (int i = prefill + chunk; i < ids.Length; i++)
        {
            using var scope = NewDisposeScope();
            rows.Add(ToMatrix(model.Forward(tensor(new[] { ids[i] }, new long[] { 1, 1 }), null, cache)[0]));
        }

        int row = 0;
        foreach (var part in rows)
            for (int r = 0; r < part.GetLength(0); r++, row++)
                for (int c = 0; c < part.GetLength(1); c++)
                    Assert.True(Math.Abs(part[r, c] - full[row, c]) < 1e-4f, $"{name}: position {row}, logit {c}: {part[r, c]} vs {full[row, c]}");
        Assert.Equal(ids.Length, row);
        Assert.Equal(ids.Length, cache.Length);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_left_padded_batch_gives_each_sequence_its_own_logits(string name)
    {
        var fixture = ReferenceFixture.Load(name);
        using var model = LlamaLoader.Load(fixture.Dir);
        var cases = fixture.Cases.Where(c => c.Ids.Length <= 20).ToList();
        int longest = cases.Max(c => c.Ids.Length);
        var ids = new long[cases.Count * longest];
        var mask = new long[cases.Count * longest];
        for (int b = 0; b < cases.Count; b++)
        {
            int offset = longest - cases[b].Ids.Length;
            for (int j = 0; j < cases[b].Ids.Length; j++)
            {
                ids[b * longest + offset + j] = cases[b].Ids[j];
                mask[b * longest + offset + j] = 1;
            }
        }
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var logits = model.Forward(tensor(ids, new long[] { cases.Count, longest }), tensor(mask, new long[] { cases.Count, longest }));
        for (int b = 0; b < cases.Count; b++)
        {
            var rows = ToMatrix(logits[b]);
            float diff = MaxAbsDiff(rows, cases[b].Logits, longest - cases[b].Ids.Length);
            Assert.True(diff < Tolerance, $"{name}, sequence {b}: max |diff| = {diff}");
        }
    }
}
