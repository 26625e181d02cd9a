using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models.Llama;
using LoraMixer.Tests.Lora;
using LoraMixer.Tests.Mixing;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Models;

/// <summary>The C# decode kernel against the TorchSharp modules (the reference path) over multi-token decodes.</summary>
public sealed class DecodeKernelTests
{
    private const float Tolerance = 1e-4f;

    public static TheoryData<string> Models() => new(ReferenceFixture.Names);

    // Logits of every decode step ([steps][batch·vocab]) after a prefill of `prompt`, with the kernel on or off.
    private static List<float[]> Decode(LlamaForCausalLM model, bool kernel, long[,] prompt, long[,]? mask, long[][] steps)
    {
        model.UseDecodeKernel = kernel;
        using var noGrad = no_grad();
        int batch = prompt.GetLength(0), length = prompt.GetLength(1);
        using var cache = model.CreateCache(batch, length + steps.Length);
        var fullMask = new long[batch, length + steps.Length];
        for (int b = 0; b < batch; b++)
            for (int s = 0; s < length + steps.Length; s++) fullMask[b, s] = s < length && mask is not null ? mask[b, s] : 1;
        Tensor? MaskUpTo(int n) => mask is null ? null : tensor(fullMask).narrow(1, 0, n);
        var rows = new List<float[]>();
        long served = model.DecodeKernelSteps;
        using (var scope = NewDisposeScope())
            model.Forward(tensor(prompt), MaskUpTo(length), cache, lastPositionOnly: true);
        for (int i = 0; i < steps.Length; i++)
        {
            using var scope = NewDisposeScope();
            var logits = model.Forward(tensor(steps[i], new long[] { batch, 1 }), MaskUpTo(length + i + 1), cache, lastPositionOnly: true);
            rows.Add(logits.data<float>().ToArray());
        }
        Assert.Equal(kernel ? steps.Length : 0, model.DecodeKernelSteps - served);
        model.UseDecodeKernel = true;
        return rows;
    }

    private static float MaxAbsDiff(List<float[]> a, List<float[]> b) =>
        a.Zip(b).Max(p => p.First.Zip(p.Second).Max(x => Math.Abs(x.First - x.Second)));

    // Decodes the same steps on the TorchSharp path and on the kernel and asserts every step's logits agree.
    private static void AssertKernelMatchesReference(LlamaForCausalLM model, long[,] prompt, long[,]? mask, long[][] steps, string label)
    {
        var reference = Decode(model, kernel: false, prompt, mask, steps);
        var kernel = Decode(model, kernel: true, prompt, mask, steps);
        float diff = MaxAbsDiff(reference, kernel);
        Assert.True(diff < Tolerance, $"{label}: max |diff| = {diff}");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Kernel_decoding_matches_the_torchsharp_path_for_one_sequence(string name)
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load(name).Dir);
        var prompt = new long[,] { { 1, 40, 41, 42, 7 } };
        var steps = Enumerable.Range(0, 12).Select(i => new long[] { (i * 37 + 3) % model.Config.VocabSize }).ToArray();
        AssertKernelMatchesReference(model, prompt, null, steps, name);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Kernel_decoding_matches_the_torchsharp_path_for_a_left_padded_batch(string name)
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load(name).Dir);
        var prompt = new long[,] { { 0, 0, 0, 1, 5 }, { 1, 9, 10, 11, 12 }, { 0, 1, 60, 61, 62 } };
        var mask = new long[,] { { 0, 0, 0, 1, 1 }, { 1, 1, 1, 1, 1 }, { 0, 1, 1, 1, 1 } };
        var steps = Enumerable.Range(0, 8).Select(i => new long[] { i + 2, (i * 13 + 5) % model.Config.VocabSize, 100 - i }).ToArray();
        AssertKernelMatchesReference(model, prompt, mask, steps, name);
    }

    [Fact]
    public void Kernel_and_torchsharp_steps_can_alternate_on_one_cache()
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
        var steps = Enumerable.Range(0, 6).Select(i => new long[] { 20 + i }).ToArray();
        var reference = Decode(model, kernel: false, new long[,] { { 1, 2, 3 } }, null, steps);

        using var noGrad = no_grad();
        using var cache = model.CreateCache(1, 3 + steps.Length);
        using (var scope = NewDisposeScope()) model.Forward(tensor(new long[,] { { 1, 2, 3 } }), null, cache);
        var mixed = new List<float[]>();
        for (int i = 0; i < steps.Length; i++)
        {
            model.UseDecodeKernel = i % 2 == 0;
            using var scope = NewDisposeScope();
            mixed.Add(model.Forward(tensor(steps[i], new long[] { 1, 1 }), null, cache, lastPositionOnly: true).data<float>().ToArray());
        }
        Assert.Equal(3, model.DecodeKernelSteps);
        float diff = MaxAbsDiff(reference, mixed);
        Assert.True(diff < Tolerance, $"max |diff| = {diff}");
    }

    public static TheoryData<RouterInput, RouterInputNorm, RoutingGranularity> MixerCases()
    {
        var data = new TheoryData<RouterInput, RouterInputNorm, RoutingGranularity>();
        foreach (var input in new[] { RouterInput.Token, RouterInput.CausalMean })
            foreach (var norm in new[] { RouterInputNorm.None, RouterInputNorm.Standardize })
                foreach (var granularity in new[] { RoutingGranularity.Token, RoutingGranularity.Sequence })
                    data.Add(input, norm, granularity);
        return data;
    }

    [Theory]
    [MemberData(nameof(MixerCases))]
    public void Kernel_decoding_of_a_mixer_matches_the_torchsharp_path(RouterInput input, RouterInputNorm norm, RoutingGranularity granularity)
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
        using var mixer = MixerCachedDecodingTests.RandomMixer(model, "tiny-llama", input, norm, granularity);
        var prompt = new long[,] { { 0, 0, 1, 17, 40 }, { 1, 9, 22, 31, 5 } };
        var mask = new long[,] { { 0, 0, 1, 1, 1 }, { 1, 1, 1, 1, 1 } };
        var steps = Enumerable.Range(0, 10).Select(i => new long[] { (i * 29 + 3) % 128, (i * 11 + 50) % 128 }).ToArray();
        AssertKernelMatchesReference(model, prompt, mask, steps, $"{input} {norm} {granularity}");
    }

    [Fact]
    public void Kernel_decoding_with_an_unmerged_lora_matches_the_torchsharp_path()
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
        // The kernel runs once on the plain model first, so it must notice the adapters attached afterwards.
        Decode(model, kernel: true, new long[,] { { 1, 2, 3 } }, null, new[] { new long[] { 4 } });
        RandomLoras.Attach(model, n => n.EndsWith(".q_proj") || n.EndsWith(".down_proj"));
        var steps = Enumerable.Range(0, 8).Select(i => new long[] { 30 + i }).ToArray();
        AssertKernelMatchesReference(model, new long[,] { { 1, 2, 3 } }, null, steps, "unmerged LoRA");
    }

    [Theory]
    [InlineData(RoutingGranularity.Token)]
    [InlineData(RoutingGranularity.Sequence)]
    public void Kernel_decoding_of_a_mixer_restricted_to_some_experts_matches_the_torchsharp_path(RoutingGranularity granularity)
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
        using var mixer = MixerCachedDecodingTests.RandomMixer(model, "tiny-llama", RouterInput.CausalMean, RouterInputNorm.Standardize, granularity, experts: 4);
        // Serving's lora_mixer.experts: expert 1 may not be chosen (top-2 of the other three).
        using var allowed = tensor(new[] { true, false, true, true });
        foreach (var slot in mixer.Slots) slot.AllowedExperts = allowed;
        var prompt = new long[,] { { 0, 0, 1, 17, 40 }, { 1, 9, 22, 31, 5 } };
        var mask = new long[,] { { 0, 0, 1, 1, 1 }, { 1, 1, 1, 1, 1 } };
        var steps = Enumerable.Range(0, 10).Select(i => new long[] { (i * 29 + 3) % 128, (i * 11 + 50) % 128 }).ToArray();
        var reference = Decode(model, kernel: false, prompt, mask, steps);
        var kernel = Decode(model, kernel: true, prompt, mask, steps);
        float diff = MaxAbsDiff(reference, kernel);
        Assert.True(diff < Tolerance, $"{granularity}: max |diff| = {diff}");
        // The restriction matters: without it the same decode gives other logits.
        foreach (var slot in mixer.Slots) slot.AllowedExperts = null;
        Assert.True(MaxAbsDiff(reference, Decode(model, kernel: true, prompt, mask, steps)) > 1e-3f);
    }

    [Fact]
    public void Kernel_decoding_with_hard_routing_to_one_expert_per_row_matches_the_torchsharp_path()
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
        using var mixer = MixerCachedDecodingTests.RandomMixer(model, "tiny-llama", RouterInput.Token, RouterInputNorm.None);
        // Serving's adapter lanes: each row forced to its own expert.
        mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
        using var experts = tensor(new long[] { 2, 0, 1 });
        mixer.SetHardExperts(experts);
        var prompt = new long[,] { { 0, 1, 17, 40 }, { 1, 9, 22, 31 }, { 1, 9, 22, 31 } };
        var mask = new long[,] { { 0, 1, 1, 1 }, { 1, 1, 1, 1 }, { 1, 1, 1, 1 } };
        var steps = Enumerable.Range(0, 8).Select(i => new long[] { (i * 29 + 3) % 128, (i * 11 + 50) % 128, (i * 11 + 50) % 128 }).ToArray();
        var reference = Decode(model, kernel: false, prompt, mask, steps);
        var kernel = Decode(model, kernel: true, prompt, mask, steps);
        float diff = MaxAbsDiff(reference, kernel);
        Assert.True(diff < Tolerance, $"max |diff| = {diff}");
        // Rows 1 and 2 read the same tokens under different experts, so their logits differ.
        int vocab = model.Config.VocabSize;
        Assert.True(kernel[^1].Skip(vocab).Take(vocab).Zip(kernel[^1].Skip(2 * vocab)).Max(p => Math.Abs(p.First - p.Second)) > 1e-3f);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Kernel_prefill_of_a_short_prompt_matches_the_torchsharp_path(string name)
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load(name).Dir);
        var prompt = new long[,] { { 1, 40, 41, 42, 7, 9, 12, 3, 30 } };
        float[] Prefill(bool kernel)
        {
            model.UseDecodeKernel = kernel;
            using var noGrad = no_grad();
            using var cache = model.CreateCache(1, 16);
            using var scope = NewDisposeScope();
            return model.Forward(tensor(prompt), null, cache, lastPositionOnly: true).data<float>().ToArray();
        }
        long before = model.DecodeKernelPrefills;
        var reference = Prefill(kernel: false);
        var kernel = Prefill(kernel: true);
        model.UseDecodeKernel = true;
        Assert.Equal(before + 1, model.DecodeKernelPrefills);
        float diff = MaxAbsDiff([reference], [kernel]);
        Assert.True(diff < Tolerance, $"{name}: max |diff| = {diff}");
    }

    [Fact]
    public void Kernel_prefill_and_decoding_of_a_token_routed_mixer_with_restricted_experts_match_the_torchsharp_path()
    {
        using var model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
        using var mixer = MixerCachedDecodingTests.RandomMixer(model, "tiny-llama", RouterInput.Token, RouterInputNorm.Standardize, experts: 4);
        using var allowed = tensor(new[] { true, true, false, true });
        foreach (var slot in mixer.Slots) slot.AllowedExperts = allowed;
        var prompt = new long[,] { { 1, 9, 22, 31, 5, 17, 40 } };
        var steps = Enumerable.Range(0, 10).Select(i => new long[] { (i * 29 + 3) % 128 }).ToArray();
        var reference = Decode(model, kernel: false, prompt, null, steps);
        long prefills = model.DecodeKernelPrefills;
        var kernel = Decode(model, kernel: true, prompt, null, steps);
        Assert.Equal(prefills + 1, model.DecodeKernelPrefills);
        float diff = MaxAbsDiff(reference, kernel);
        Assert.True(diff < Tolerance, $"max |diff| = {diff}");
    }
}
