namespace LoraMixer.Generation;

/// <summary>
/// Picks the next token from a logits row: greedy, or temperature → top-k → top-p (nucleus) sampling
/// in the order Hugging Face applies its logits warpers.
/// </summary>
public sealed class TokenSampler
{
    private readonly GenerationOptions _options;
    private readonly Random _random;

    /// <summary>Creates a sampler seeded from <see cref="GenerationOptions.Seed"/>.</summary>
    public TokenSampler(GenerationOptions options)
    {
        options.Validate();
        _options = options;
        _random = new Random(options.Seed);
    }

    /// <summary>The chosen id for one row of logits.</summary>
    public int Next(ReadOnlySpan<float> logits)
    {
        if (_options.Temperature == 0) return ArgMax(logits);

        int[] order = new int[logits.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        float[] keys = new float[logits.Length];
        for (int i = 0; i < keys.Length; i++) keys[i] = -logits[i];
        Array.Sort(keys, order); // descending logits; stable enough: ties keep no particular order

        int kept = _options.TopK > 0 ? Math.Min(_options.TopK, order.Length) : order.Length;
        double max = logits[order[0]] / _options.Temperature;
        double[] probs = new double[kept];
        double sum = 0;
        for (int i = 0; i < kept; i++)
        {
            probs[i] = Math.Exp(logits[order[i]] / _options.Temperature - max);
            sum += probs[i];
        }
        if (_options.TopP < 1.0)
        {
            double cumulative = 0;
            int cut = kept;
            for (int i = 0; i < kept; i++)
            {
                cumulative += probs[i] / sum;
                if (cumulative >= _options.TopP) { cut = i + 1; break; }
            }
            kept = cut;
            sum = 0;
            for (int i = 0; i < kept; i++) sum += probs[i];
        }

        double r = _random.NextDouble() * sum;
        for (int i = 0; i < kept; i++)
        {
            r -= probs[i];
            if (r < 0) return order[i];
        }
        return order[kept - 1];
    }

    /// <summary>Index of the largest logit (the first one on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
}
