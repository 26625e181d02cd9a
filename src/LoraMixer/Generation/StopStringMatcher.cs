namespace LoraMixer.Generation;

/// <summary>
/// Streams text while watching for stop strings: text that could still turn into a stop string is
/// held back, so the caller never sees any part of one.
/// </summary>
public sealed class StopStringMatcher
{
    private readonly IReadOnlyList<string> _stops;
    private string _pending = "";

    /// <summary>Watches for <paramref name="stops"/> (none: text passes straight through).</summary>
    public StopStringMatcher(IReadOnlyList<string> stops) => _stops = stops;

    /// <summary>True once a stop string has appeared.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds text; returns what can be shown now.</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        _pending += text;
        int first = -1;
        foreach (string stop in _stops)
        {
            int at = _pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (first < 0 || at < first)) first = at;
        }
        if (first >= 0)
        {
            Stopped = true;
            string before = _pending[..first];
            _pending = "";
            return before;
        }
        int hold = 0;
        foreach (string stop in _stops)
            for (int n = Math.Min(stop.Length - 1, _pending.Length); n > hold; n--)
                if (_pending.AsSpan(_pending.Length - n).SequenceEqual(stop.AsSpan(0, n))) { hold = n; break; }
        string ready = _pending[..^hold];
        _pending = _pending[^hold..];
        return ready;
    }

    /// <summary>At the end of generation: the held-back text, which turned out not to be a stop string.</summary>
    public string Flush()
    {
        string rest = Stopped ? "" : _pending;
        _pending = "";
        return rest;
    }
}
