using System.Text.Json.Nodes;
using LoraMixer.Models.Llama;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>The router inputs (token, causal mean), input standardisation and router supervision.</summary>
public sealed class RouterInputTests
{
    private static RoutingSlot Slot(RouterInput input, long hidden = 3, int experts = 2, long seed = 1)
    {
        using (manual_seed(seed)) { }
        var router = new Router(experts, input == RouterInput.CausalMean ? 2 * hidden : hidden, CPU);
        using (no_grad()) router.weight.copy_(randn(router.weight.shape));
        return new RoutingSlot("r", 0, router, new RoutingSettings(RoutingMode.Soft), input);
    }

    [Fact]
    public void Causal_mean_features_are_the_token_and_the_mean_of_the_real_tokens_so_far()
    {
        using var slot = Slot(RouterInput.CausalMean, hidden: 2);
        // One sequence, left-padded: the padding's values must not enter the mean.
        var h = tensor(new float[] { 100, 100, 1, 2, 3, 6, 5, 1 }).reshape(1, 4, 2);
        var mask = tensor(new long[] { 0, 1, 1, 1 }).reshape(1, 4);
        var f = slot.Features(new BlockInput(h, mask, null)).reshape(-1).data<float>().ToArray();
        // Position 1: mean (1,2); position 2: mean of (1,2),(3,6) = (2,4); position 3: (9,9)/3 = (3,3).
        Assert.Equal(new float[] { 1, 2, 1, 2 }, f.Skip(4).Take(4).ToArray());
        Assert.Equal(new float[] { 3, 6, 2, 4 }, f.Skip(8).Take(4).ToArray());
        Assert.Equal(new float[] { 5, 1, 3, 3 }, f.Skip(12).Take(4).ToArray());
    }

    [Fact]
    public void Causal_mean_decision_at_t_does_not_depend_on_later_tokens()
    {
        using var slot = Slot(RouterInput.CausalMean, hidden: 4, experts: 3);
        slot.Record = true;
        using (manual_seed(3)) { }
        var h = randn(1, 6, 4);
        var changed = h.clone();
        changed[0, 4] = randn(4);
        changed[0, 5] = randn(4);
        slot.Route(new BlockInput(h, null, null));
        slot.Route(new BlockInput(changed, null, null));
        var recorded = slot.TakeRecorded();
        Assert.True(recorded[0].narrow(1, 0, 4).allclose(recorded[1].narrow(1, 0, 4), rtol: 0, atol: 1e-7), "positions before the change moved");
        Assert.False(recorded[0].narrow(1, 4, 2).allclose(recorded[1].narrow(1, 4, 2)), "the changed positions must route differently");
    }

    [Fact]
    public void Causal_mean_continues_across_cached_steps_exactly()
    {
        using var slot = Slot(RouterInput.CausalMean, hidden: 4, experts: 3);
        using (manual_seed(5)) { }
        var h = randn(2, 5, 4);
        var mask = tensor(new long[] { 1, 1, 1, 1, 1, 0, 1, 1, 1, 1 }).reshape(2, 5);
        var whole = slot.Features(new BlockInput(h, mask, null));
        using var cache = new KvCache(1, 2, 1, 1, 8, CPU);
        var first = slot.Features(new BlockInput(h.narrow(1, 0, 3), mask.narrow(1, 0, 3), cache));
        var second = slot.Features(new BlockInput(h.narrow(1, 3, 1), mask.narrow(1, 3, 1), cache));
        var third = slot.Features(new BlockInput(h.narrow(1, 4, 1), mask.narrow(1, 4, 1), cache));
        var stepped = cat(new[] { first, second, third }, 1);
        // Row 1's padded position 0 has no mean yet; compare real positions only.
        Assert.True(whole[0].allclose(stepped[0], rtol: 0, atol: 1e-6));
        Assert.True(whole[1].narrow(0, 1, 4).allclose(stepped[1].narrow(0, 1, 4), rtol: 0, atol: 1e-6));
    }

    [Fact]
    public void Standardised_router_reads_features_minus_mean_over_std()
    {
        var router = new Router(2, 2, CPU);
        using (no_grad()) router.weight.copy_(tensor(new float[] { 1, 0, 0, 1 }).reshape(2, 2));
        router.SetStandardization(tensor(new float[] { 1, 2 }), tensor(new float[] { 2, 4 }));
        var logits = router.forward(tensor(new float[] { 5, 10 }).reshape(1, 2)).data<float>().ToArray();
        Assert.Equal(new float[] { 2, 2 }, logits); // (5-1)/2, (10-2)/4
        router.SetStandardization(null, null);
        Assert.Equal(new float[] { 5, 10 }, router.forward(tensor(new float[] { 5, 10 }).reshape(1, 2)).data<float>().ToArray());
    }

    // p for one sample of 3 tokens, the last padding; expert 1 is the sample's task expert:
    //   loss = −(ln 0.2 + ln 0.6) / 2 = (1.6094379 + 0.5108256) / 2 = 1.0601318
    //   d loss / d p[t, 1] = −1 / (2 p[t, 1]): −2.5 and −0.8333333; zero for the other expert and the padding.
    [Fact]
    public void Supervision_value_and_gradient_match_the_hand_worked_example()
    {
        var p = tensor(new float[] { 0.8f, 0.2f, 0.4f, 0.6f, 0.5f, 0.5f }).reshape(1, 3, 2).requires_grad_(true);
        var mask = tensor(new long[] { 1, 1, 0 }).reshape(1, 3);
        var loss = RoutingLoss.Supervision(p, mask, tensor(new long[] { 1 }));
        Assert.Equal(1.0601318, loss.item<float>(), 5);
        loss.backward();
        var grad = p.grad!.reshape(-1).data<float>().ToArray();
        double[] expected = { 0.0, -2.5, 0.0, -0.8333333, 0.0, 0.0 };
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], grad[i], 5);
    }

    [Fact]
    public void Supervision_skips_samples_without_an_expert()
    {
        var p = tensor(new float[] { 0.8f, 0.2f, 0.3f, 0.7f }).reshape(2, 1, 2);
        var loss = RoutingLoss.Supervision(p, ones(2, 1), tensor(new long[] { 0, -1 }));
        Assert.Equal(-Math.Log(0.8), loss.item<float>(), 5);
    }

    [Fact]
    public void Mixer_config_saves_the_router_design_and_older_configs_load_with_the_old_one()
    {
        var config = new MixerConfig
        {
            BaseModel = "b", Architecture = "LlamaForCausalLM", HiddenSize = 8, NumHiddenLayers = 2,
            RouterInput = RouterInput.CausalMean, RouterInputNorm = RouterInputNorm.Standardize, RoutingGranularity = RoutingGranularity.Sequence,
            Experts = new[] { new MixerExpert("a", "experts/a"), new MixerExpert("b", "experts/b") },
        };
        var json = config.ToJson();
        Assert.Equal("causal_mean", json["router_input"]!.GetValue<string>());
        Assert.Equal("standardize", json["router_input_norm"]!.GetValue<string>());
        Assert.Equal("sequence", json["routing_granularity"]!.GetValue<string>());
        var back = MixerConfig.FromJson(json, "test");
        Assert.Equal(RouterInput.CausalMean, back.RouterInput);
        Assert.Equal(RouterInputNorm.Standardize, back.RouterInputNorm);
        Assert.Equal(RoutingGranularity.Sequence, back.RoutingGranularity);

        var old = (JsonObject)json.DeepClone();
        old.Remove("router_input");
        old.Remove("router_input_norm");
        old.Remove("routing_granularity");
        var legacy = MixerConfig.FromJson(old, "old");
        Assert.Equal(RouterInput.Token, legacy.RouterInput);
        Assert.Equal(RouterInputNorm.None, legacy.RouterInputNorm);
        Assert.Equal(RoutingGranularity.Token, legacy.RoutingGranularity);

        old["router_input"] = "attention";
        var e = Assert.Throws<Errors.ModelFormatException>(() => MixerConfig.FromJson(old, "bad.json"));
        Assert.Contains("router_input", e.Message);
    }

    [Fact]
    public void Standardisation_makes_the_measured_router_inputs_zero_mean_and_unit_variance()
    {
        using var model = ModelLoader.LoadCausalLM(Path.Combine(TestPaths.Fixtures, "models", "tiny-llama"), CPU);
        using var mixer = MixerCachedDecodingTests.RandomMixer(model, "tiny-llama", RouterInput.CausalMean, RouterInputNorm.Standardize);
        var rng = new Random(3);
        var examples = Enumerable.Range(0, 10).Select(i =>
        {
            int length = 4 + i % 5;
            var ids = Enumerable.Range(0, length).Select(_ => rng.Next(1, 60)).ToArray();
            return new LoraMixer.Data.EncodedExample(ids, ids.Select((_, t) => t >= 2).ToArray(), 0, i + 1);
        }).ToArray();
        MixerTrainingJob.Standardize(mixer, examples, batchSize: 4);

        // The same tokens again, routers at zero (uniform routing, as while measuring): per feature, the
        // standardised inputs over all real tokens have mean 0 and (population) variance 1.
        using var noGrad = no_grad();
        foreach (var (_, p) in mixer.RouterParameters()) p.zero_();
        mixer.SetRouting(new RoutingSettings(RoutingMode.Soft));
        mixer.SetFeatureRecording(true);
        var perRouter = mixer.Slots.Select(_ => new List<Tensor>()).ToArray();
        foreach (var chunk in examples.Chunk(4))
        {
            using var batch = LoraMixer.Data.BatchCollator.Collate(chunk, 0, CPU);
            model.Forward(batch.InputIds, batch.AttentionMask);
            var real = batch.AttentionMask.reshape(-1).nonzero().squeeze(1);
            for (int r = 0; r < mixer.Slots.Count; r++)
            {
                var f = mixer.Slots[r].TakeRecordedFeatures().Single();
                perRouter[r].Add(f.reshape(-1, f.shape[^1]).index_select(0, real));
            }
        }
        mixer.SetFeatureRecording(false);
        for (int r = 0; r < mixer.Slots.Count; r++)
        {
            var router = mixer.Slots[r].Router;
            var z = (cat(perRouter[r].ToArray(), 0) - router.InputMean!) / router.InputStd!;
            Assert.True(z.mean(new long[] { 0 }).abs().max().item<float>() < 1e-3, $"router {r}: mean not 0");
            var variance = z.pow(2).mean(new long[] { 0 });
            // Features that never vary keep the floor of the deviation and stay near 0.
            Assert.True(((variance - 1).abs() < 1e-2).logical_or(variance < 1e-3).all().item<bool>(), $"router {r}: variance not 1");
        }
    }

    [Fact]
    public void Causal_mean_needs_block_scope()
    {
        string baseDir = Path.Combine(TestPaths.Fixtures, "models", "tiny-llama");
        using var model = LlamaLoader.Load(baseDir);
        var config = new MixerConfig
        {
            BaseModel = baseDir, Architecture = "LlamaForCausalLM", HiddenSize = 64, NumHiddenLayers = 2,
            RouterScope = RouterScope.Projection, RouterInput = RouterInput.CausalMean,
            Experts = new[] { new MixerExpert("a", "experts/a") },
        };
        var e = Assert.Throws<ArgumentException>(() => LoraMixerModel.Attach(model, config, new[] { new LoraConfig { R = 2, LoraAlpha = 4 } }));
        Assert.Contains("--router-input token", e.Message);
    }
}
