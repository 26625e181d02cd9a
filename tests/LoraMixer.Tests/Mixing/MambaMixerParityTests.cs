using System.Text.Json;
using LoraMixer.Mixing;
using LoraMixer.Models;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// The mixer on a Mamba base against tests/reference/reference_mamba_mixer.py: three PEFT experts of different
/// ranks, scalings and targets on in_proj / out_proj of tiny-mamba, random routers (block and projection
/// scope), soft, top-k and hard routing (fixtures from make_mamba_mixer_fixtures.py).
/// </summary>
public sealed class MambaMixerParityTests
{
    private static readonly string[] Fixtures = ["tiny-mamba-mixer", "tiny-mamba-mixer-projection"];

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in Fixtures)
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir(name), "expected.json")));
            for (int i = 0; i < doc.RootElement.GetProperty("cases").GetArrayLength(); i++) data.Add(name, i);
        }
        return data;
    }

    private static string Dir(string name) => Path.Combine(TestPaths.Fixtures, "mixers", name);

    private static ICausalLM LoadBase(string dir) =>
        ModelLoader.LoadCausalLM(Path.GetFullPath(Path.Combine(dir, MixerConfig.Load(dir).BaseModel)), CPU);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Mamba_mixer_logits_match_the_PyTorch_reference(string fixture, int caseIndex)
    {
        string dir = Dir(fixture);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var c = doc.RootElement.GetProperty("cases")[caseIndex];
        var ids = c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var expected = c.GetProperty("logits").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();

        using var model = LoadBase(dir);
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
        Assert.Equal(expected.Length * vocab, actual.Length);
        double maxDiff = 0;
        for (int t = 0; t < expected.Length; t++)
            for (int v = 0; v < vocab; v++)
                maxDiff = Math.Max(maxDiff, Math.Abs(actual[t * vocab + v] - expected[t][v]));
        Assert.True(maxDiff < 1e-4, $"{fixture} case {caseIndex} ({mode}): max |Δ| = {maxDiff}");
    }

    [Theory]
    [InlineData("tiny-mamba-mixer")]
    [InlineData("tiny-mamba-mixer-projection")]
    public void Mamba_mixer_routing_probabilities_match_the_reference_gates(string fixture)
    {
        // The soft case's gates are the router probabilities p [layers, (targets,) T, E] of the reference.
        string dir = Dir(fixture);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "expected.json")));
        var c = doc.RootElement.GetProperty("cases").EnumerateArray().Last(x => x.GetProperty("mode").GetString() == "soft");
        var ids = c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var gates = Flatten(c.GetProperty("gates")).ToArray();

        using var model = LoadBase(dir);
        using var mixer = MixerCheckpoint.Load(model, dir);
        mixer.SetRouting(new RoutingSettings(RoutingMode.Soft));
        mixer.SetRecording(true);
        using var noGrad = no_grad();
        model.Forward(tensor(ids, new long[] { 1, ids.Length }));
        var recorded = mixer.TakeRecordedProbabilities();
        mixer.SetRecording(false);
        // Slots are in layer order (block) or layer, then in_proj, out_proj (projection), as the reference stacks them.
        var actual = recorded.SelectMany(p => p.data<float>().ToArray()).ToArray();
        foreach (var p in recorded) p.Dispose();
        Assert.Equal(gates.Length, actual.Length);
        for (int i = 0; i < gates.Length; i++)
            Assert.True(Math.Abs(gates[i] - actual[i]) < 1e-5, $"{fixture}: p[{i}] = {actual[i]}, reference {gates[i]}");
    }

    private static IEnumerable<float> Flatten(JsonElement e) =>
        e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().SelectMany(Flatten) : [e.GetSingle()];
}
