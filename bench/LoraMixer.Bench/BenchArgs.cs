namespace LoraMixer.Bench;

/// <summary>Minimal "--name value" parsing for benchmark modes.</summary>
internal sealed class BenchArgs
{
    private readonly Dictionary<string, string> _values = new();

    public BenchArgs(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"unexpected argument '{args[i]}'; use --name value pairs");
            _values[args[i][2..]] = args[++i];
        }
    }

    public string Required(string name) =>
        _values.TryGetValue(name, out var v) ? v : throw new ArgumentException($"--{name} is required");

    public int Int(string name, int fallback) => _values.TryGetValue(name, out var v) ? int.Parse(v) : fallback;

    public string String(string name, string fallback) => _values.TryGetValue(name, out var v) ? v : fallback;

    public string? Optional(string name) => _values.TryGetValue(name, out var v) ? v : null;
}
