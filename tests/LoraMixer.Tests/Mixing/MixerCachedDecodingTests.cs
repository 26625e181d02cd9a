using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// For every router input, normalisation and granularity, on a Llama and a Mamba base: decoding with the
/// inference cache (prefill, then one token at a time) gives the logits of recomputing the whole sequence,
/// with top-k routing. Sequence routing decides at the prefill's last token; the recomputation is told that
/// position.
/// </summary>
public sealed class MixerCachedDecodingTests
{
    public static TheoryData<string, RouterInput, RouterInputNorm, RoutingGranularity> Cases()
    {
        var data = new TheoryData<string, RouterInput, RouterInputNorm, RoutingGranularity>();
        foreach (var model in new[] { "tiny-llama", "tiny-mamba" })
            foreach (var input in new[] { RouterInput.Token, RouterInput.CausalMean })
                foreach (var norm in new[] { RouterInputNorm.None, RouterInputNorm.Standardize })
                    foreach (var granularity in new[] { RoutingGranularity.Token, RoutingGranularity.Sequence })
                        data.Add(model, input, norm, granularity);
        return data;
    }

    internal static LoraMixerModel RandomMixer(ICausalLM model, string modelName, RouterInput input, RouterInputNorm norm,
        RoutingGranularity granularity = RoutingGranularity.Token, int experts = 3, long seed = 7)
    {
        var (architecture, hidden, layers) = ModelStructure.Describe(model);
        var targets = modelName.Contains("mamba") ? TargetLinears.MambaProjections : TargetLinears.AttentionProjections;
        var config = new MixerConfig
        {
            BaseModel = modelName, Architecture = architecture, HiddenSize = hidden, NumHiddenLayers = layers,
            Targets = targets, RouterInput = input, RouterInputNorm = norm, RoutingGranularity = granularity, TopK = 2,
            Experts = Enumerable.Range(0, experts).Select(e => new MixerExpert($"e{e}", $"experts/e{e}")).ToArray(),
        };
        var mixer = LoraMixerModel.Attach(model, config, Enumerable.Repeat(new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = targets }, experts).ToArray());
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using (manual_seed(seed)) { }
        foreach (var (_, p) in mixer.ExpertParameters()) p.copy_(randn(p.shape) * 0.3);
        foreach (var (_, p) in mixer.RouterParameters()) p.copy_(randn(p.shape) * 2);
        if (norm == RouterInputNorm.Standardize)
            foreach (var slot in mixer.Slots)
                slot.Router.SetStandardization(randn(slot.Router.InFeatures) * 0.1, rand(slot.Router.InFeatures) + 0.5);
        mixer.SetRouting(config.InferenceRouting);
        return mixer;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Cached_decoding_equals_recomputation(string modelName, RouterInput input, RouterInputNorm norm, RoutingGranularity granularity)
    {
        using var model = ModelLoader.LoadCausalLM(Path.Combine(TestPaths.Fixtures, "models", modelName), CPU);
        using var mixer = RandomMixer(model, modelName, input, norm, granularity);
        using var noGrad = no_grad();
        // Two sequences, the second left-padded by two positions, as batched generation lays them out.
        var ids = tensor(new long[] { 1, 17, 40, 3, 9, 22, 31, 5, 0, 0, 1, 8, 14, 27, 2, 11 }, new long[] { 2, 8 });
        var mask = tensor(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1 }, new long[] { 2, 8 });
        if (granularity == RoutingGranularity.Sequence) mixer.SetDecisionPositions(tensor(new long[] { 3, 3 }));
        var whole = model.Forward(ids, mask);
        mixer.SetDecisionPositions(null);

        using var cache = model.CreateCache(2, 8);
        var parts = new List<Tensor> { model.Forward(ids.narrow(1, 0, 4), mask.narrow(1, 0, 4), cache) };
        for (int t = 4; t < 8; t++) parts.Add(model.Forward(ids.narrow(1, t, 1), mask.narrow(1, 0, t + 1), cache));
        var stepped = cat(parts.ToArray(), 1);
        // Only real positions matter (padding rows are never read).
        var real = mask.to(ScalarType.Bool).unsqueeze(-1).expand_as(whole);
        double diff = (whole - stepped).abs().masked_select(real).max().item<float>();
        // Relative to the logits' size: the random experts make logits up to ~10, and fp32 rounding of the scan and the
        // running mean then differs by a few 1e-4 between CPUs whose libtorch kernels differ (AVX-512 vs AVX2). A wrong
        // running mean or decision moves the logits by far more.
        double scale = Math.Max(1.0, whole.abs().masked_select(real).max().item<float>());
        Assert.True(diff < 1e-4 * scale, $"{modelName} {input} {norm} {granularity}: max |cached − recomputed| = {diff}, max |logit| {scale}");

        // Guard: the routing must not be constant, or the test would not see a wrong running mean or decision.
        mixer.SetRecording(true);
        model.Forward(ids, mask);
        var p = mixer.TakeRecordedProbabilities();
        mixer.SetRecording(false);
        Assert.True(p.SelectMany(x => x.argmax(-1).reshape(-1).data<long>().ToArray()).Distinct().Count() > 1, "routing picks one expert everywhere");
        foreach (var x in p) x.Dispose();
    }

    [Fact]
    public void Sequence_routing_gives_every_token_of_a_row_the_decision_of_its_prompt_end()
    {
        using var model = ModelLoader.LoadCausalLM(Path.Combine(TestPaths.Fixtures, "models", "tiny-llama"), CPU);
        using var mixer = RandomMixer(model, "tiny-llama", RouterInput.CausalMean, RouterInputNorm.None, RoutingGranularity.Sequence);
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 1, 17, 40, 3, 9, 22, 1, 8, 14, 27, 2, 11 }, new long[] { 2, 6 });
        mixer.SetRouting(new RoutingSettings(RoutingMode.Soft));
        mixer.SetRecording(true);
        mixer.SetDecisionPositions(tensor(new long[] { 2, 4 }));
        model.Forward(ids);
        var sequence = mixer.TakeRecordedProbabilities();
        mixer.SetDecisionPositions(null);
        mixer.SetRecording(false);
        for (int r = 0; r < sequence.Count; r++)
        {
            var p = sequence[r];
            for (int row = 0; row < 2; row++)
                for (int t = 1; t < 6; t++)
                    Assert.True(p[row, t].allclose(p[row, 0], rtol: 0, atol: 0), $"router {r}, row {row}: token {t} differs from token 0");
            Assert.False(p[0, 0].allclose(p[1, 0]), $"router {r}: both rows got the same decision");
        }

        // Block 0 reads the embeddings, which no routing changes: its decision is the per-token routing of the
        // same router (same seed, same weights) at the decision position.
        using var plain = ModelLoader.LoadCausalLM(Path.Combine(TestPaths.Fixtures, "models", "tiny-llama"), CPU);
        using var perToken = RandomMixer(plain, "tiny-llama", RouterInput.CausalMean, RouterInputNorm.None, RoutingGranularity.Token);
        perToken.SetRouting(new RoutingSettings(RoutingMode.Soft));
        perToken.SetRecording(true);
        plain.Forward(ids);
        var tokens = perToken.TakeRecordedProbabilities();
        perToken.SetRecording(false);
        Assert.True(sequence[0][0, 0].allclose(tokens[0][0, 2], rtol: 0, atol: 1e-6));
        Assert.True(sequence[0][1, 0].allclose(tokens[0][1, 4], rtol: 0, atol: 1e-6));
        foreach (var x in sequence.Concat(tokens)) x.Dispose();
    }
}
