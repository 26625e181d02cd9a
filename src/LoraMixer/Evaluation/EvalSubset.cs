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
    /// The examples an evaluation scores: all without <paramref name="limit"/>; the first <paramref name="limit"/>
    /// in file order as lm-evaluation-harness's <c>--limit</c>; or, with <paramref name="limitSeed"/>, a seeded
    /// random subset (<see cref="Select"/>).
    /// </summary>
    public static IReadOnlyList<int> Choose(int count, int? limit, int? limitSeed)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count));
        if (limit is < 1) throw new ArgumentOutOfRangeException(nameof(limit), limit, "limit must be ≥ 1");
        if (limitSeed is { } seed) return Select(count, limit, seed);
        return Enumerable.Range(0, limit is { } n ? Math.Min(n, count) : count).ToArray();
    }

    /// <summary>How <see cref="Choose"/> picked <paramref name="chosen"/> of <paramref name="count"/>, for the result ("all 872", "first 200 of 872", ...).</summary>
    public static string Describe(int count, int chosen, int? limit, int? limitSeed) =>
        limit is null || chosen >= count ? $"all {count}"
        : limitSeed is { } seed ? $"random {chosen} of {count} (limit seed {seed})"
        : $"first {chosen} of {count}";

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
