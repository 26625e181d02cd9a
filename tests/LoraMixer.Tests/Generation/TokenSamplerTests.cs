using LoraMixer.Generation;

namespace LoraMixer.Tests.Generation;

public sealed class TokenSamplerTests
{
    private static readonly float[] Logits = { 1.0f, 3.0f, 2.0f, 0.0f, 2.5f };

    private static double[] Frequencies(GenerationOptions options, int draws = 40000)
    {
        var sampler = new TokenSampler(options);
        var counts = new double[Logits.Length];
        for (int i = 0; i < draws; i++) counts[sampler.Next(Logits)]++;
        return counts.Select(c => c / draws).ToArray();
    }

    private static double[] Softmax(IEnumerable<double> x)
    {
        var e = x.Select(Math.Exp).ToArray();
        return e.Select(v => v / e.Sum()).ToArray();
    }

    [Fact]
    public void Temperature_zero_is_argmax()
    {
        Assert.Equal(1, new TokenSampler(new GenerationOptions()).Next(Logits));
        Assert.Equal(0, TokenSampler.ArgMax(new float[] { 2, 2, 1 }));
    }

    [Fact]
    public void Sampling_follows_the_tempered_softmax()
    {
        var expected = Softmax(Logits.Select(l => l / 2.0));
        var observed = Frequencies(new GenerationOptions { Temperature = 2.0, Seed = 3 });
        for (int i = 0; i < expected.Length; i++) Assert.InRange(observed[i], expected[i] - 0.01, expected[i] + 0.01);
    }

    [Fact]
    public void Top_k_renormalises_over_the_k_most_likely()
    {
        // k = 2 keeps logits 3.0 (id 1) and 2.5 (id 4): probabilities 1/(1+e^-0.5) and the rest.
        var observed = Frequencies(new GenerationOptions { Temperature = 1.0, TopK = 2, Seed = 1 });
        double p1 = 1 / (1 + Math.Exp(-0.5));
        Assert.InRange(observed[1], p1 - 0.01, p1 + 0.01);
        Assert.InRange(observed[4], 1 - p1 - 0.01, 1 - p1 + 0.01);
        Assert.Equal(0, observed[0] + observed[2] + observed[3]);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_p()
    {
        var p = Softmax(Logits.Select(l => (double)l)); // ids by probability: 1, 4, 2, 0, 3
        double topTwo = p[1] + p[4];
        // p just below the mass of the two most likely: exactly those two survive.
        var observed = Frequencies(new GenerationOptions { Temperature = 1.0, TopP = topTwo - 1e-6, Seed = 2 });
        Assert.Equal(0, observed[0] + observed[2] + observed[3]);
        Assert.InRange(observed[1], p[1] / topTwo - 0.01, p[1] / topTwo + 0.01);
        // a tiny p keeps only the most likely token
        Assert.Equal(1.0, Frequencies(new GenerationOptions { Temperature = 1.0, TopP = 1e-9 }, 1000)[1]);
    }

    [Fact]
    public void Bad_settings_are_rejected_by_name()
    {
        Assert.Contains("top-p", Assert.Throws<ArgumentException>(() => new TokenSampler(new GenerationOptions { TopP = 0 })).Message);
        Assert.Contains("temperature", Assert.Throws<ArgumentException>(() => new TokenSampler(new GenerationOptions { Temperature = -1 })).Message);
    }
}
