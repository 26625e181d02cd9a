namespace LoraMixer.Tokenization;

/// <summary>
/// The merge loop shared by SentencePiece, llama2.c and Hugging Face BPE: repeatedly merge the adjacent pair
/// with the lowest priority value, ties going to the leftmost pair. All three references agree on that order
/// (SentencePiece's agenda, llama2.c's full rescan, tokenizers' heap), so one queue-based loop serves them all.
/// </summary>
internal static class BpeMerger
{
    /// <summary>Says whether <paramref name="left"/> and <paramref name="right"/> merge, into what, at which priority.</summary>
    public delegate bool TryMerge<T>(T left, T right, out T merged, out double priority);

    private readonly record struct Candidate<T>(int Left, int Right, int LeftVersion, int RightVersion, T Merged);

    /// <summary>Runs the merges to completion and returns the remaining symbols in order.</summary>
    public static List<T> Merge<T>(IReadOnlyList<T> symbols, TryMerge<T> tryMerge)
    {
        int n = symbols.Count;
        if (n < 2) return [.. symbols];
        var value = new T[n];
        var prev = new int[n];
        var next = new int[n];
        var version = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++)
        {
            value[i] = symbols[i];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
            alive[i] = true;
        }

        var queue = new PriorityQueue<Candidate<T>, (double Priority, int Left)>(n);
        void Offer(int left)
        {
            int right = next[left];
            if (right < 0) return;
            if (tryMerge(value[left], value[right], out T merged, out double priority))
                queue.Enqueue(new Candidate<T>(left, right, version[left], version[right], merged), (priority, left));
        }

        for (int i = 0; i < n - 1; i++) Offer(i);
        while (queue.TryDequeue(out var c, out _))
        {
            // Entries are never removed from the queue; one whose symbols changed since it was queued is stale.
            if (!alive[c.Left] || !alive[c.Right] || version[c.Left] != c.LeftVersion
                || version[c.Right] != c.RightVersion || next[c.Left] != c.Right)
                continue;
            value[c.Left] = c.Merged;
            version[c.Left]++;
            alive[c.Right] = false;
            next[c.Left] = next[c.Right];
            if (next[c.Right] >= 0) prev[next[c.Right]] = c.Left;
            if (prev[c.Left] >= 0) Offer(prev[c.Left]);
            Offer(c.Left);
        }

        var result = new List<T>();
        for (int i = 0; i >= 0; i = next[i]) result.Add(value[i]);
        return result;
    }
}
