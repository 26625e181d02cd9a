using LoraMixer.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using AdamW = LoraMixer.Training.AdamW;

namespace LoraMixer.Tests.Training;

public sealed class AdamWTests
{
    private static readonly (string Name, long[] Shape)[] Shapes = [("w", [3, 2]), ("b", [4])];

    [Fact]
    public void Five_steps_match_torch_optim_AdamW_including_a_step_without_gradient()
    {
        // Inputs as in tests/reference/make_adamw_reference.py, which wrote AdamWReferenceValues.cs.
        using var scope = NewDisposeScope();
        var parameters = Shapes.Select((s, k) => KeyValuePair.Create(s.Name, new Parameter(Values(s.Shape, i => ((5 * i + 3 * k) % 9 - 4) / 8f)))).ToList();
        using var optimizer = new AdamW(parameters, AdamWReferenceValues.Beta1, AdamWReferenceValues.Beta2,
            AdamWReferenceValues.Epsilon, AdamWReferenceValues.WeightDecay);
        for (int t = 1; t <= AdamWReferenceValues.Steps; t++)
        {
            for (int k = 0; k < Shapes.Length; k++)
            {
                if (Shapes[k].Name == "b" && t == 3) continue;
                int step = t, index = k;
                parameters[k].Value.grad = Values(Shapes[k].Shape, i => ((7 * i + 3 * step + index) % 11 - 5) / 4f);
            }
            optimizer.Step(0.01 * t);
            optimizer.ZeroGrad();
        }

        var state = optimizer.ExportState().ToDictionary(s => s.Key, s => s.Value);
        AssertClose(AdamWReferenceValues.WParam, parameters[0].Value);
        AssertClose(AdamWReferenceValues.WExpAvg, state["w.exp_avg"]);
        AssertClose(AdamWReferenceValues.WExpAvgSq, state["w.exp_avg_sq"]);
        Assert.Equal(AdamWReferenceValues.WStep, state["w.step"].item<long>());
        AssertClose(AdamWReferenceValues.BParam, parameters[1].Value);
        AssertClose(AdamWReferenceValues.BExpAvg, state["b.exp_avg"]);
        AssertClose(AdamWReferenceValues.BExpAvgSq, state["b.exp_avg_sq"]);
        Assert.Equal(AdamWReferenceValues.BStep, state["b.step"].item<long>());
    }

    [Fact]
    public void First_step_moves_each_weight_by_lr_against_the_gradient_sign_plus_decay()
    {
        // At t = 1, m̂ = g and √v̂ = |g|, so the update is lr·sign(g) (ε aside), after p ← p(1 − lr·wd).
        using var scope = NewDisposeScope();
        var p = new Parameter(tensor(new float[] { 1f, -2f, 0.5f }));
        using var optimizer = new AdamW([KeyValuePair.Create("p", p)], weightDecay: 0.5);
        p.grad = tensor(new float[] { 3f, -0.25f, 1e-3f });
        optimizer.Step(0.1);
        float[] expected = [1f * 0.95f - 0.1f, -2f * 0.95f + 0.1f, 0.5f * 0.95f - 0.1f];
        Assert.Equal(expected, p.data<float>().ToArray(), (a, b) => Math.Abs(a - b) < 1e-5);
    }

    [Fact]
    public void Imported_state_continues_exactly_like_the_original()
    {
        using var scope = NewDisposeScope();
        Parameter Make() => new(tensor(new float[] { 0.3f, -0.7f }));
        var a = Make();
        var b = Make();
        using var first = new AdamW([KeyValuePair.Create("p", a)], weightDecay: 0.1);
        for (int t = 0; t < 3; t++)
        {
            a.grad = tensor(new float[] { 0.5f - t, 0.25f * t });
            first.Step(0.05);
        }
        using var second = new AdamW([KeyValuePair.Create("p", b)], weightDecay: 0.1);
        var exported = first.ExportState().ToDictionary(s => s.Key, s => s.Value);
        second.ImportState(name => exported.GetValueOrDefault(name), "memory");
        using (no_grad()) b.copy_(a);
        a.grad = tensor(new float[] { 1f, -1f });
        b.grad = tensor(new float[] { 1f, -1f });
        first.Step(0.05);
        second.Step(0.05);
        Assert.Equal(a.data<float>().ToArray(), b.data<float>().ToArray());
    }

    [Fact]
    public void Importing_state_without_a_moment_names_the_missing_tensor()
    {
        using var scope = NewDisposeScope();
        using var optimizer = new AdamW([KeyValuePair.Create("layer.weight", new Parameter(zeros(2)))]);
        Tensor? Read(string name) => name switch
        {
            "layer.weight.exp_avg" => zeros(2),
            "layer.weight.step" => tensor(1L),
            _ => null,
        };
        var error = Assert.Throws<LoraMixer.Errors.ModelFormatException>(() => optimizer.ImportState(Read, "opt.safetensors"));
        Assert.Contains("layer.weight.exp_avg_sq", error.Message);
        Assert.Contains("opt.safetensors", error.Message);
    }

    private static Tensor Values(long[] shape, Func<int, float> value)
    {
        int n = (int)shape.Aggregate(1L, (x, y) => x * y);
        return tensor(Enumerable.Range(0, n).Select(value).ToArray()).reshape(shape);
    }

    private static void AssertClose(float[] expected, Tensor actual)
    {
        float[] values = actual.detach().reshape(-1).data<float>().ToArray();
        Assert.Equal(expected.Length, values.Length);
        for (int i = 0; i < values.Length; i++)
            Assert.True(Math.Abs(expected[i] - values[i]) <= 1e-7 + 1e-6 * Math.Abs(expected[i]), $"[{i}]: expected {expected[i]:R}, got {values[i]:R}");
    }
}
