namespace LoraMixer.Server;

/// <summary>Where the OpenAI-compatible server listens and how it behaves at the edges.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind; loopback unless told otherwise.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>Port to bind; 0 picks a free one (see <see cref="OpenAiServer.BaseAddress"/>).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>When set, every route but <c>/health</c> needs <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }

    /// <summary>How long running requests may take to finish after SIGTERM before they are cut.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Most choices one request may ask for (<c>n</c>).</summary>
    public int MaxChoices { get; init; } = 16;

    /// <summary>Kestrel's own log lines (warnings and errors) go to the console when true.</summary>
    public bool Verbose { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Host)) throw new ArgumentException("--host must name an address, e.g. 127.0.0.1");
        if (Port is < 0 or > 65535) throw new ArgumentException($"--port must be between 0 and 65535, got {Port}");
        if (ApiKey is { Length: 0 }) throw new ArgumentException("--api-key is empty; give a key or leave the option out");
        if (ShutdownGrace < TimeSpan.Zero) throw new ArgumentException("--shutdown-grace must be ≥ 0");
    }
}
