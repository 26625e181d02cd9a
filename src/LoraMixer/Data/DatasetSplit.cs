namespace LoraMixer.Data;

/// <summary>Deterministic train / evaluation splits.</summary>
public static class DatasetSplit
{
    /// <summary>
    /// Holds out round(<paramref name="fraction"/>·n) items, chosen at random from <paramref name="seed"/>, for
    /// evaluation. Both parts keep the original order.
    /// </summary>
    /// <param name="items">The whole data set.</param>
    /// <param name="fraction">Share held out, in [0, 1].</param>
    /// <param name="seed">Seed of the choice; the same seed gives the same split.</param>
    public static (IReadOnlyList<T> Train, IReadOnlyList<T> Eval) Holdout<T>(IReadOnlyList<T> items, double fraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (double.IsNaN(fraction) || fraction < 0 || fraction > 1)
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The held-out fraction must be between 0 and 1.");
        return Holdout(items, (int)Math.Round(fraction * items.Count, MidpointRounding.AwayFromZero), seed);
    }

    /// <summary>
    /// Holds out <paramref name="count"/> items, chosen at random from <paramref name="seed"/>, for evaluation.
    /// Both parts keep the original order.
    /// </summary>
    /// <param name="items">The whole data set.</param>
    /// <param name="count">Number held out, in [0, n].</param>
    /// <param name="seed">Seed of the choice; the same seed gives the same split.</param>
    public static (IReadOnlyList<T> Train, IReadOnlyList<T> Eval) Holdout<T>(IReadOnlyList<T> items, int count, int seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (count < 0 || count > items.Count)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"Cannot hold out {count} of {items.Count} items.");
        var random = new Random(seed);
        int[] order = Enumerable.Range(0, items.Count).ToArray();
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        var held = new bool[items.Count];
        for (int i = 0; i < count; i++) held[order[i]] = true;
        var train = new List<T>(items.Count - count);
        var eval = new List<T>(count);
        for (int i = 0; i < items.Count; i++) (held[i] ? eval : train).Add(items[i]);
        return (train, eval);
    }
}
