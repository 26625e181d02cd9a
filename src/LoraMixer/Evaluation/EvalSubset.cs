namespace LoraMixer.Evaluation;

/// <summary>Deterministic example selection: the <c>--limit</c> subset and the few-shot exemplars.</summary>
public static class EvalSubset
{
    /// <summary>
    /// Indices of the examples to evaluate, ascending: all of them without a limit, else a seeded uniform sample of
    /// <paramref name="limit"/> (the same seed and count always give the same subset).
    /// </summary>
    public static IReadOnlyList<int> Select(int count, int? limit, int seed)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        if (limit is null || limit >= count) return Enumerable.Range(0, count).ToArray();
        if (limit < 1) throw new ArgumentOutOfRangeException(nameof(limit), limit, "limit must be ≥ 1");
        var order = Enumerable.Range(0, count).ToArray();
        new Random(seed).Shuffle(order);
        var chosen = order[..limit.Value];
        Array.Sort(chosen);
        return chosen;
    }

    /// <summary>
    /// <paramref name="shots"/> distinct indices into a pool of <paramref name="poolCount"/> for example
    /// <paramref name="exampleIndex"/>, seeded by both, never <paramref name="exclude"/> (the example itself when the
    /// pool is the evaluated split).
    /// </summary>
    public static IReadOnlyList<int> FewShot(int poolCount, int shots, int seed, int exampleIndex, int? exclude = null)
    {
        if (shots == 0) return Array.Empty<int>();
        var candidates = Enumerable.Range(0, poolCount).Where(i => i != exclude).ToArray();
        if (candidates.Length < shots)
            throw new ArgumentException($"{shots} shots requested but the exemplar pool has only {candidates.Length} examples");
        new Random(unchecked(seed * 1_000_003 + exampleIndex)).Shuffle(candidates);
        return candidates[..shots];
    }
}
