namespace LoraMixer.Data;

/// <summary>
/// Batches of example indices with similar lengths, so padding stays small, in an order that is random but
/// fully determined by (seed, epoch): a run resumed at an epoch sees the same batches.
/// </summary>
public static class LengthBucketedBatches
{
    /// <summary>
    /// Shuffles the indices, sorts each window of <paramref name="batchSize"/>·<paramref name="bucketFactor"/> of
    /// them by length, cuts the windows into batches and shuffles the batch order. Every index appears exactly once;
    /// the last batch of a window may be smaller.
    /// </summary>
    /// <param name="lengths">Token count of each example.</param>
    /// <param name="batchSize">Examples per batch (at least 1).</param>
    /// <param name="seed">Run seed.</param>
    /// <param name="epoch">Epoch number; each epoch gets its own order.</param>
    /// <param name="bucketFactor">Batches per sorting window (at least 1); 1 gives no length bucketing across batches.</param>
    public static IReadOnlyList<int[]> Create(IReadOnlyList<int> lengths, int batchSize, int seed, int epoch, int bucketFactor = 50)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(bucketFactor, 1);
        // System.Random with an explicit seed is the same sequence on every platform and run; HashCode is not.
        var random = new Random(unchecked(seed * 1_000_003 + epoch));
        int[] order = Enumerable.Range(0, lengths.Count).ToArray();
        Shuffle(order, random);

        long window = (long)batchSize * bucketFactor;
        var batches = new List<int[]>((lengths.Count + batchSize - 1) / batchSize);
        for (int start = 0; start < order.Length; start += (int)Math.Min(window, order.Length - start))
        {
            int count = (int)Math.Min(window, order.Length - start);
            // OrderBy is stable, so equal lengths keep their shuffled order.
            int[] sorted = order.Skip(start).Take(count).OrderBy(i => lengths[i]).ToArray();
            for (int b = 0; b < sorted.Length; b += batchSize)
                batches.Add(sorted[b..Math.Min(b + batchSize, sorted.Length)]);
        }
        var shuffled = batches.ToArray();
        Shuffle(shuffled, random);
        return shuffled;
    }

    private static void Shuffle<T>(T[] items, Random random)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = random.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
