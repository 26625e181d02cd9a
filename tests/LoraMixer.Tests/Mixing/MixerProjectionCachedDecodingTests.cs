using LoraMixer.Mixing;
using static LoraMixer.Tests.Mixing.MixerTrainingSupport;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// With one router per projection (<c>router_scope: projection</c>), on a Llama and a Mamba base, decoding with
/// the inference cache (prefill, then one token at a time) gives the logits of recomputing the whole batch, for
/// top-k routing (k = 1 and 2, the sparse expert paths) and soft routing. MixerCachedDecodingTests covers
/// block scope.
/// </summary>
public sealed class MixerProjectionCachedDecodingTests
{
    public static TheoryData<string, RoutingMode, int> Cases()
    {
        var data = new TheoryData<string, RoutingMode, int>();
        foreach (var model in new[] { "tiny-llama", "tiny-mamba" })
        {
            data.Add(model, RoutingMode.TopK, 1);
            data.Add(model, RoutingMode.TopK, 2);
            data.Add(model, RoutingMode.Soft, 2);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Cached_decoding_with_projection_routers_equals_recomputation(string baseName, RoutingMode mode, int topK)
    {
        using var model = LoadBase(baseName);
        var config = Config(model, baseName, ["alpha", "beta", "gamma"], RouterScope.Projection);
        using var mixer = RandomMixer(model, config, seed: 21, routerStd: 1.0);
        mixer.SetRouting(new RoutingSettings(mode, topK));
        using var noGrad = no_grad();
        // Two sequences, the second left-padded by two positions, as batched generation lays them out.
        var ids = tensor(new long[] { 1, 17, 40, 3, 9, 22, 31, 5, 0, 0, 1, 8, 14, 27, 2, 11 }, new long[] { 2, 8 });
        var mask = tensor(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1 }, new long[] { 2, 8 });
        var whole = model.Forward(ids, mask);

        using var cache = model.CreateCache(2, 8);
        var parts = new List<Tensor> { model.Forward(ids.narrow(1, 0, 4), mask.narrow(1, 0, 4), cache) };
        for (int t = 4; t < 8; t++) parts.Add(model.Forward(ids.narrow(1, t, 1), mask.narrow(1, 0, t + 1), cache));
        var stepped = cat(parts.ToArray(), 1);
        var real = mask.to(ScalarType.Bool).unsqueeze(-1).expand_as(whole);
        double diff = (whole - stepped).abs().masked_select(real).max().item<float>();
        Assert.True(diff < 1e-4, $"{baseName} {mode} k={topK}: max |cached − recomputed| = {diff}");

        // Guards: the mixer changes the logits, and the routers do not all pick one expert everywhere.
        using var plain = LoadBase(baseName);
        Assert.True((plain.Forward(ids, mask) - whole).abs().masked_select(real).max().item<float>() > 1e-2, "the mixer must change the logits");
        mixer.SetRouting(new RoutingSettings(RoutingMode.Soft));
        mixer.SetRecording(true);
        model.Forward(ids, mask);
        var p = mixer.TakeRecordedProbabilities();
        mixer.SetRecording(false);
        Assert.Equal(mixer.Projections.Count, p.Count);
        Assert.True(p.SelectMany(x => x.argmax(-1).reshape(-1).data<long>().ToArray()).Distinct().Count() > 1, "routing picks one expert everywhere");
        foreach (var x in p) x.Dispose();
    }
}
