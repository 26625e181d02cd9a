namespace LoraMixer.Evaluation;

/// <summary>
/// Settings of <see cref="CodeExecutor"/>. Running model-written code is off unless <see cref="AllowCodeExecution"/>
/// is set (the CLI's <c>--allow-code-execution</c>).
/// </summary>
public sealed record CodeExecutionOptions
{
    /// <summary>Whether generated code may be executed at all.</summary>
    public bool AllowCodeExecution { get; init; }
    /// <summary>The Python interpreter to run.</summary>
    public string PythonExecutable { get; init; } = "python3";
    /// <summary>Wall-clock limit per program; the whole process tree is killed when it passes.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Address-space limit (RLIMIT_AS) of the Python process, in bytes.</summary>
    public long MemoryLimitBytes { get; init; } = 1L << 30;
    /// <summary>Most characters of stdout+stderr kept per program.</summary>
    public int MaxOutputChars { get; init; } = 4096;
    /// <summary>Programs run at the same time by <see cref="CodeExecutor.RunMany"/>.</summary>
    public int MaxParallelism { get; init; } = 2;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(PythonExecutable)) throw new ArgumentException("the Python executable must be named");
        if (Timeout <= TimeSpan.Zero) throw new ArgumentException($"the execution timeout must be positive, got {Timeout}");
        if (MemoryLimitBytes < 64L << 20) throw new ArgumentException($"the memory limit must be at least 64 MiB, got {MemoryLimitBytes} bytes");
        if (MaxOutputChars < 0) throw new ArgumentException($"max output chars must be ≥ 0, got {MaxOutputChars}");
        if (MaxParallelism < 1) throw new ArgumentException($"parallelism must be ≥ 1, got {MaxParallelism}");
    }
}
