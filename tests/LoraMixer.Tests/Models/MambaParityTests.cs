using LoraMixer.Models;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Models;

public sealed class MambaParityTests
{
    private const float Tolerance = 1e-4f;

    public static TheoryData<string> Models() => new("tiny-mamba", "tiny-falcon-mamba");

    private static float[,] ToMatrix(Tensor t)
    {
        var data = t.contiguous().data<float>().ToArray();
        int rows = (int)t.shape[0], cols = (int)t.shape[1];
        var m = new float[rows, cols];
        Buffer.BlockCopy(data, 0, m, 0, data.Length * sizeof(float));
        return m;
    }

    private static float[,] Logits(ICausalLM model, long[] ids)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return ToMatrix(model.Forward(tensor(ids, new long[] { 1, ids.Length }))[0]);
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
        using var model = MambaLoader.Load(fixture.Dir);
        Assert.Equal(4, fixture.Cases.Count);
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
    public void Sequential_scan_model_also_matches_the_reference(string name)
    {
        var fixture = ReferenceFixture.Load(name);
        using var model = MambaLoader.Load(fixture.Dir);
        model.ScanMode = SelectiveScanMode.Sequential;
        var (ids, expected) = fixture.Cases.OrderByDescending(c => c.Ids.Length).First();
        float diff = MaxAbsDiff(Logits(model, ids), expected);
        Assert.True(diff < Tolerance, $"{name}: max |diff| = {diff}");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Cached_decoding_equals_full_recomputation(string name)
    {
        var fixture = ReferenceFixture.Load(name);
        using var model = MambaLoader.Load(fixture.Dir);
        var ids = fixture.Cases.OrderByDescending(c => c.Ids.Length).First().Ids;
        var full = Logits(model, ids);

        using var noGrad = no_grad();
        using var cache = model.CreateCache(1, 8); // capacity is irrelevant: the state has a fixed size
        int prefill = 5, chunk = 40;
        var rows = new List<float[,]>();
        using (var scope = NewDisposeScope())
            rows.Add(ToMatrix(model.Forward(tensor(ids[..prefill], new long[] { 1, prefill }), null, cache)[0]));
        // a multi-token (chunked-scan) pass that starts from a non-zero state ...
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
                    Assert.True(Math.Abs(part[r, c] - full[row, c]) < Tolerance, $"{name}: position {row}, logit {c}: {part[r, c]} vs {full[row, c]}");
        Assert.Equal(ids.Length, row);
        Assert.Equal(ids.Length, cache.Length);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void A_left_padded_batch_gives_each_sequence_its_own_logits_and_decodes_on(string name)
    {
        var fixture = ReferenceFixture.Load(name);
        using var model = MambaLoader.Load(fixture.Dir);
        // prompts are every case but the last position, which is then decoded through the cache
        var cases = fixture.Cases.Where(c => c.Ids.Length > 1).ToList();
        int longest = cases.Max(c => c.Ids.Length) - 1;
        var ids = new long[cases.Count * longest];
        var mask = new long[cases.Count * longest];
        for (int b = 0; b < cases.Count; b++)
        {
            int offset = longest - (cases[b].Ids.Length - 1);
            for (int j = 0; j < cases[b].Ids.Length - 1; j++)
            {
                ids[b * longest + offset + j] = cases[b].Ids[j];
                mask[b * longest + offset + j] = 1;
            }
            for (int j = 0; j < offset; j++) ids[b * longest + j] = 42; // padding ids must not matter
        }
        using var noGrad = no_grad();
        using var cache = model.CreateCache(cases.Count, longest + 1);
        using var scope = NewDisposeScope();
        var maskTensor = tensor(mask, new long[] { cases.Count, longest });
        var logits = model.Forward(tensor(ids, new long[] { cases.Count, longest }), maskTensor, cache);
        var next = tensor(cases.Select(c => c.Ids[^1]).ToArray(), new long[] { cases.Count, 1 });
        var nextMask = cat(new[] { maskTensor, ones(cases.Count, 1, dtype: ScalarType.Int64) }, 1);
        var step = model.Forward(next, nextMask, cache);
        for (int b = 0; b < cases.Count; b++)
        {
            var expected = cases[b].Logits;
            float diff = MaxAbsDiff(ToMatrix(logits[b]), expected[..^1], longest - (cases[b].Ids.Length - 1));
            Assert.True(diff < Tolerance, $"{name}, sequence {b}: max |diff| = {diff}");
            float stepDiff = MaxAbsDiff(ToMatrix(step[b]), expected[^1..]);
            Assert.True(stepDiff < Tolerance, $"{name}, sequence {b}, decoded step: max |diff| = {stepDiff}");
        }
    }

    [Fact]
    public void The_mixer_input_observer_sees_the_normalised_block_input()
    {
        var fixture = ReferenceFixture.Load("tiny-mamba");
        using var model = MambaLoader.Load(fixture.Dir);
        var seen = new List<long[]>();
        double? rms = null;
        model.backbone.layers[1].MixerInputObserver = input =>
        {
            seen.Add(input.Hidden.shape);
            rms ??= input.Hidden.pow(2).mean().sqrt().item<float>();
        };
        Logits(model, new long[] { 1, 2, 3 });
        Assert.Single(seen);
        Assert.Equal(new long[] { 1, 3, 64 }, seen[0]);
        Assert.InRange(rms!.Value, 0.8, 1.2); // RMS-normalised (norm weights are 1 ± 0.1)
    }

    [Fact]
    public void LoadCausalLM_dispatches_on_model_type()
    {
        string models = Path.Combine(TestPaths.Fixtures, "models");
        using (var mamba = (IDisposable)ModelLoader.LoadCausalLM(Path.Combine(models, "tiny-mamba")))
            Assert.IsType<MambaForCausalLM>(mamba);
        using (var falcon = (IDisposable)ModelLoader.LoadCausalLM(Path.Combine(models, "tiny-falcon-mamba")))
            Assert.IsType<MambaForCausalLM>(falcon);
        using (var llama = (IDisposable)ModelLoader.LoadCausalLM(Path.Combine(models, "tiny-llama")))
            Assert.IsType<LlamaForCausalLM>(llama);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Parameter_names_are_the_checkpoint_keys_and_ParameterCount_counts_them(string name)
    {
        var fixture = ReferenceFixture.Load(name);
        using var model = MambaLoader.Load(fixture.Dir);
        using var checkpoint = LoraMixer.IO.SafeTensorsCheckpoint.Open(fixture.Dir);
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        Assert.True(names.SetEquals(checkpoint.Names), string.Join(", ", names.Except(checkpoint.Names).Concat(checkpoint.Names.Except(names))));
        Assert.Equal(model.parameters().Sum(p => p.numel()), model.Config.ParameterCount());
        Assert.Equal(int.Parse("1048576"), model.MaxPositionEmbeddings);
    }
}
