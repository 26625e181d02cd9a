using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models.Mamba;
using LoraMixer.Tests.Lora;
using LoraMixer.Tests.Mixing;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Models;

/// <summary>
/// Mamba's C# kernels (the prefill convolution/scan/gate and the decode step) against the TorchSharp modules,
/// the reference path, over prefills and multi-step decodes.
/// </summary>
public sealed class MambaKernelTests
{
    private const float Tolerance = 1e-4f;

    public static TheoryData<string> Models() => new("tiny-mamba", "tiny-falcon-mamba");

    // Logits of the prefill's last position and of every decode step ([1 + steps][batch·vocab]), kernels on or off.
    private static List<float[]> Decode(MambaForCausalLM model, bool kernel, long[,] prompt, long[,]? mask, long[][] steps)
    {
        model.UseDecodeKernel = kernel;
        model.UsePrefillKernel = kernel;
        using var noGrad = no_grad();
        int batch = prompt.GetLength(0), length = prompt.GetLength(1);
        using var cache = model.CreateCache(batch, length + steps.Length);
        var fullMask = new long[batch, length + steps.Length];
        for (int b = 0; b < batch; b++)
            for (int s = 0; s < length + steps.Length; s++) fullMask[b, s] = s < length && mask is not null ? mask[b, s] : 1;
        Tensor? MaskUpTo(int n) => mask is null ? null : tensor(fullMask).narrow(1, 0, n);
        var rows = new List<float[]>();
        long served = model.DecodeKernelSteps, passes = model.PrefillKernelPasses;
        using (var scope = NewDisposeScope())
            rows.Add(model.Forward(tensor(prompt), MaskUpTo(length), cache, lastPositionOnly: true).data<float>().ToArray());
        Assert.Equal(kernel ? model.Config.NumHiddenLayers : 0, model.PrefillKernelPasses - passes);
        for (int i = 0; i < steps.Length; i++)
        {
            using var scope = NewDisposeScope();
            var logits = model.Forward(tensor(steps[i], new long[] { batch, 1 }), MaskUpTo(length + i + 1), cache, lastPositionOnly: true);
            rows.Add(logits.data<float>().ToArray());
        }
        Assert.Equal(kernel ? steps.Length : 0, model.DecodeKernelSteps - served);
        model.UseDecodeKernel = true;
        model.UsePrefillKernel = true;
        return rows;
    }

    private static float MaxAbsDiff(List<float[]> a, List<float[]> b) =>
        a.Zip(b).Max(p => p.First.Zip(p.Second).Max(x => Math.Abs(x.First - x.Second)));

    private static MambaForCausalLM Load(string name) => MambaLoader.Load(Path.Combine(TestPaths.Fixtures, "models", name));

    [Theory]
    [MemberData(nameof(Models))]
    public void Kernels_match_the_torchsharp_path_for_one_sequence(string name)
    {
        using var model = Load(name);
        var prompt = new long[,] { { 1, 40, 41, 42, 7, 9, 100, 3, 77, 12, 5 } };
        var steps = Enumerable.Range(0, 12).Select(i => new long[] { (i * 37 + 3) % model.Config.VocabSize }).ToArray();
        var reference = Decode(model, kernel: false, prompt, null, steps);
        var kernel = Decode(model, kernel: true, prompt, null, steps);
        float diff = MaxAbsDiff(reference, kernel);
        Assert.True(diff < Tolerance, $"{name}: max |diff| = {diff}");
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Kernels_match_the_torchsharp_path_for_a_left_padded_batch(string name)
    {
        using var model = Load(name);
        var prompt = new long[,] { { 0, 0, 0, 1, 5, 6 }, { 1, 9, 10, 11, 12, 13 }, { 0, 1, 60, 61, 62, 63 } };
        var mask = new long[,] { { 0, 0, 0, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1 }, { 0, 1, 1, 1, 1, 1 } };
        var steps = Enumerable.Range(0, 8).Select(i => new long[] { i + 2, (i * 13 + 5) % model.Config.VocabSize, 100 - i }).ToArray();
        var reference = Decode(model, kernel: false, prompt, mask, steps);
        var kernel = Decode(model, kernel: true, prompt, mask, steps);
        float diff = MaxAbsDiff(reference, kernel);
        Assert.True(diff < Tolerance, $"{name}: max |diff| = {diff}");
    }

    [Fact]
    public void Prefill_kernel_continues_the_states_of_earlier_passes_like_the_reference()
    {
        // Passes of 7, then 2 (shorter than the convolution's K−1 = 3, so the conv state reaches into the old one), then 30.
        using var model = Load("tiny-mamba");
        var random = new Random(3);
        var ids = Enumerable.Range(0, 39).Select(_ => (long)random.Next(model.Config.VocabSize)).ToArray();
        List<float[]> Run(bool kernel)
        {
            model.UsePrefillKernel = kernel;
            using var noGrad = no_grad();
            using var cache = (MambaCache)model.CreateCache(2, 39);
            var rows = new List<float[]>();
            long passes = model.PrefillKernelPasses;
            foreach (var (start, length) in new[] { (0, 7), (7, 2), (9, 30) })
            {
                using var scope = NewDisposeScope();
                var chunk = tensor(ids).narrow(0, start, length).unsqueeze(0).repeat(2, 1);
                rows.Add(model.Forward(chunk, null, cache).data<float>().ToArray());
            }
            for (int layer = 0; layer < model.Config.NumHiddenLayers; layer++)
            {
                rows.Add(cache.ConvState(layer).data<float>().ToArray());
                rows.Add(cache.SsmState(layer).data<float>().ToArray());
            }
            Assert.Equal(kernel ? 3 * model.Config.NumHiddenLayers : 0, model.PrefillKernelPasses - passes);
            model.UsePrefillKernel = true;
            return rows;
        }
        float diff = MaxAbsDiff(Run(false), Run(true));
        Assert.True(diff < Tolerance, $"max |diff| = {diff}");
    }

    [Fact]
    public void Wide_scan_gives_bitwise_the_results_of_the_256_bit_scan()
    {
        // d_inner = 128, a multiple of 16, so the AVX-512 blocks take every channel; three passes so the SSM
        // state is read and written back between them. Without AVX-512 both runs take the 256-bit blocks.
        using var model = Load("tiny-mamba");
        Assert.Equal(0, model.Config.IntermediateSize % 16);
        var random = new Random(11);
        var ids = Enumerable.Range(0, 45).Select(_ => (long)random.Next(model.Config.VocabSize)).ToArray();
        List<float[]> Run(bool wide)
        {
            bool saved = MambaMixerKernel.UseWide;
            MambaMixerKernel.UseWide = wide && saved;
            try
            {
                using var noGrad = no_grad();
                using var cache = (MambaCache)model.CreateCache(2, 45);
                var rows = new List<float[]>();
                foreach (var (start, length) in new[] { (0, 20), (20, 5), (25, 20) })
                {
                    using var scope = NewDisposeScope();
                    var chunk = tensor(ids).narrow(0, start, length).unsqueeze(0).repeat(2, 1);
                    rows.Add(model.Forward(chunk, null, cache).data<float>().ToArray());
                }
                for (int layer = 0; layer < model.Config.NumHiddenLayers; layer++)
                    rows.Add(cache.SsmState(layer).data<float>().ToArray());
                return rows;
            }
            finally { MambaMixerKernel.UseWide = saved; }
        }
        var narrow = Run(wide: false);
        var wideRows = Run(wide: true);
        Assert.Equal(narrow.Count, wideRows.Count);
        for (int i = 0; i < narrow.Count; i++) Assert.Equal(narrow[i], wideRows[i]);
    }

    [Fact]
    public void Prefill_kernel_matches_the_sequential_reference_scan_with_large_decays()
    {
        // Larger Δ·|A| than the fixture's, so the state forgets and refills within the sequence.
        using var model = Load("tiny-mamba");
        using (no_grad())
            foreach (var layer in model.backbone.layers)
            {
                using var scope = NewDisposeScope();
                layer.mixer.A_log.add_(1.5);
                ((TorchSharp.Modules.Linear)layer.mixer.dt_proj).bias!.add_(2.0);
            }
        var random = new Random(5);
        var ids = tensor(Enumerable.Range(0, 64).Select(_ => (long)random.Next(model.Config.VocabSize)).ToArray(), new long[] { 1, 64 });
        float[] Logits(bool kernel)
        {
            model.UsePrefillKernel = kernel;
            model.ScanMode = SelectiveScanMode.Sequential;
            using var noGrad = no_grad();
            using var scope = NewDisposeScope();
            long passes = model.PrefillKernelPasses;
            var logits = model.Forward(ids).data<float>().ToArray();
            Assert.Equal(kernel ? model.Config.NumHiddenLayers : 0, model.PrefillKernelPasses - passes);
            return logits;
        }
        var reference = Logits(false);
        var kernel = Logits(true);
        float diff = reference.Zip(kernel).Max(p => Math.Abs(p.First - p.Second));
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
    public void Kernels_of_a_mixer_match_the_torchsharp_path(RouterInput input, RouterInputNorm norm, RoutingGranularity granularity)
    {
        using var model = Load("tiny-mamba");
        using var mixer = MixerCachedDecodingTests.RandomMixer(model, "tiny-mamba", input, norm, granularity);
        var prompt = new long[,] { { 0, 0, 1, 17, 40 }, { 1, 9, 22, 31, 5 } };
        var mask = new long[,] { { 0, 0, 1, 1, 1 }, { 1, 1, 1, 1, 1 } };
        var steps = Enumerable.Range(0, 10).Select(i => new long[] { (i * 29 + 3) % 128, (i * 11 + 50) % 128 }).ToArray();
        var reference = Decode(model, kernel: false, prompt, mask, steps);
        var kernel = Decode(model, kernel: true, prompt, mask, steps);
        float diff = MaxAbsDiff(reference, kernel);
        Assert.True(diff < Tolerance, $"{input} {norm} {granularity}: max |diff| = {diff}");
    }

    [Fact]
    public void Kernel_decoding_with_an_unmerged_lora_on_every_projection_matches_the_torchsharp_path()
    {
        using var model = Load("tiny-falcon-mamba");
        // The kernel runs once on the plain model first, so it must notice the adapters attached afterwards.
        Decode(model, kernel: true, new long[,] { { 1, 2, 3 } }, null, new[] { new long[] { 4 } });
        RandomLoras.Attach(model, n => n.EndsWith("_proj"));
        var steps = Enumerable.Range(0, 8).Select(i => new long[] { 30 + i }).ToArray();
        var reference = Decode(model, kernel: false, new long[,] { { 1, 2, 3 } }, null, steps);
        var kernel = Decode(model, kernel: true, new long[,] { { 1, 2, 3 } }, null, steps);
        float diff = MaxAbsDiff(reference, kernel);
        Assert.True(diff < Tolerance, $"max |diff| = {diff}");
    }

    [Fact]
    public void Kernel_and_torchsharp_steps_can_alternate_on_one_cache()
    {
        using var model = Load("tiny-mamba");
        var steps = Enumerable.Range(0, 6).Select(i => new long[] { 20 + i }).ToArray();
        var reference = Decode(model, kernel: false, new long[,] { { 1, 2, 3 } }, null, steps).Skip(1).ToList();

        using var noGrad = no_grad();
        using var cache = model.CreateCache(1, 3 + steps.Length);
        using (var scope = NewDisposeScope()) model.Forward(tensor(new long[,] { { 1, 2, 3 } }), null, cache);
        var mixed = new List<float[]>();
        long served = model.DecodeKernelSteps;
        for (int i = 0; i < steps.Length; i++)
        {
            model.UseDecodeKernel = i % 2 == 0;
            using var scope = NewDisposeScope();
            mixed.Add(model.Forward(tensor(steps[i], new long[] { 1, 1 }), null, cache, lastPositionOnly: true).data<float>().ToArray());
        }
        Assert.Equal(3, model.DecodeKernelSteps - served);
        float diff = MaxAbsDiff(reference, mixed);
        Assert.True(diff < Tolerance, $"max |diff| = {diff}");
    }

    [Fact]
    public void A_cache_of_another_batch_size_is_refused_not_overrun()
    {
        using var model = Load("tiny-mamba");
        using var noGrad = no_grad();
        using var cache = model.CreateCache(1, 8);
        var ids = tensor(new long[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        Assert.ThrowsAny<Exception>(() => model.Forward(ids, null, cache));
        Assert.ThrowsAny<Exception>(() => model.Forward(ids.narrow(1, 0, 1), null, cache));
    }
}
