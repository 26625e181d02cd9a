using System.Text.Json;
using LoraMixer.Models.Llama;
using LoraMixer.Mixing;
using LoraMixer.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// The mixer against tests/reference/reference_mixer.py: three PEFT experts of different ranks, scalings
/// and targets over tiny-llama, random routers, every routing mode (fixtures from make_mixer_fixtures.py).
/// </summary>
public sealed class MixerParityTests
{
    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in new[] { "tiny-llama-mixer", "tiny-llama-mixer-projection", "tiny-llama-mixer-causal-mean", "tiny-llama-mixer-sequence" })
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir(name), "expected.json")));
            for (int i = 0; i < doc.RootElement.GetProperty("cases").GetArrayLength(); i++) data.Add(name, i);
        }
        return data;
    }

    private static string Dir(string name) => Path.Combine(TestPaths.Fixtures, "mixers", name);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Mixer_logits_match_the_PyTorch_reference(string fixture, int caseIndex)
    {
        string dir = Dir(fixture);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var c = doc.RootElement.GetProperty("cases")[caseIndex];
        var ids = c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var expected = c.GetProperty("logits").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();

        var config = MixerConfig.Load(dir);
        using var model = LlamaLoader.Load(Path.GetFullPath(Path.Combine(dir, config.BaseModel)));
        using var mixer = MixerCheckpoint.Load(model, dir);
        string mode = c.GetProperty("mode").GetString()!;
        switch (mode)
        {
            case "soft":
                mixer.SetRouting(new RoutingSettings(RoutingMode.Soft));
                break;
            case "topk":
                mixer.SetRouting(new RoutingSettings(RoutingMode.TopK, c.GetProperty("top_k").GetInt32(), c.GetProperty("renormalize").GetBoolean()));
                break;
            case "hard":
                mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
                mixer.SetHardExperts(tensor(new long[] { c.GetProperty("expert").GetInt64() }));
                break;
            default:
                throw new InvalidOperationException(mode);
        }
        using var noGrad = no_grad();
        var logits = model.Forward(tensor(ids, new long[] { 1, ids.Length }))[0];
        var actual = logits.data<float>().ToArray();
        long vocab = logits.shape[1];
        double maxDiff = 0;
        for (int t = 0; t < expected.Length; t++)
            for (int v = 0; v < vocab; v++)
                maxDiff = Math.Max(maxDiff, Math.Abs(actual[t * vocab + v] - expected[t][v]));
        Assert.True(maxDiff < 1e-4, $"{fixture} case {caseIndex} ({mode}): max |Δ| = {maxDiff}");
    }

    [Fact]
    public void Mixer_changes_the_base_logits()
    {
        // Guards the parity test against a mixer that silently does nothing.
        string dir = Dir("tiny-llama-mixer");
        var config = MixerConfig.Load(dir);
        string baseDir = Path.GetFullPath(Path.Combine(dir, config.BaseModel));
        using var plain = LlamaLoader.Load(baseDir);
        using var model = LlamaLoader.Load(baseDir);
        using var mixer = MixerCheckpoint.Load(model, dir);
        using var noGrad = no_grad();
        var ids = tensor(new long[] { 1, 47, 68, 25 }, new long[] { 1, 4 });
        var diff = (model.Forward(ids) - plain.Forward(ids)).abs().max().item<float>();
        Assert.True(diff > 1e-2, $"mixer changed logits by only {diff}");
    }

    [Fact]
    public void Saved_mixer_loads_back_with_identical_logits()
    {
        string dir = Dir("tiny-llama-mixer");
        var config = MixerConfig.Load(dir);
        string baseDir = Path.GetFullPath(Path.Combine(dir, config.BaseModel));
        string outDir = Path.Combine(Path.GetTempPath(), "loramixer-tests", "mixer-roundtrip-" + Guid.NewGuid().ToString("N")[..8]);
        var ids = tensor(new long[] { 1, 47, 68, 25, 118, 67 }, new long[] { 1, 6 });
        using var noGrad = no_grad();
        Tensor first;
        using (var model = LlamaLoader.Load(baseDir))
        using (var mixer = MixerCheckpoint.Load(model, dir))
        {
            first = model.Forward(ids).detach().clone();
            MixerCheckpoint.Save(mixer, outDir);
        }
        using var model2 = LlamaLoader.Load(baseDir);
        using var mixer2 = MixerCheckpoint.Load(model2, outDir);
        Assert.Equal(config.Experts.Select(e => e.Name), mixer2.ExpertNames);
        Assert.True(model2.Forward(ids).allclose(first, rtol: 0, atol: 1e-6));
        Assert.True(File.Exists(Path.Combine(outDir, "experts", "gamma", "adapter_model.safetensors")));
        Directory.Delete(outDir, recursive: true);
    }

    [Fact]
    public void A_mixer_for_another_base_names_what_differs()
    {
        string dir = Dir("tiny-llama-mixer");
        using var other = LlamaLoader.Load(Path.Combine(TestPaths.Fixtures, "models", "tiny-mistral"));
        var e = Assert.Throws<LoraMixer.Errors.AdapterMismatchException>(() => MixerCheckpoint.Load(other, dir));
        Assert.Contains("architecture LlamaForCausalLM vs MistralForCausalLM", e.Message);
    }
}
