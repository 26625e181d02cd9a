using System.Globalization;

namespace LoraMixer.Evaluation;

/// <summary>
/// Settings of <see cref="CodeExecutor"/>. Running model-written code is off unless <see cref="AllowCodeExecution"/>
/// is set (the CLI's <c>--allow-code-execution</c>).
/// </summary>
public sealed record CodeExecutionOptions
{
    /// <summary>human-eval's timeout per program.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(3);

    /// <summary>Whether generated code may be executed at all.</summary>
    public bool AllowCodeExecution { get; init; }
    /// <summary>The Python interpreter to run.</summary>
    public string PythonExecutable { get; init; } = "python3";
    /// <summary>Wall-clock limit per program (human-eval: 3 s); RLIMIT_CPU is this rounded up plus one second.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;
    /// <summary>Address-space limit (RLIMIT_AS and RLIMIT_DATA) of each process, in bytes.</summary>
    public long MemoryLimitBytes { get; init; } = 1L << 30;
    /// <summary>Largest file a program may write (RLIMIT_FSIZE), in bytes.</summary>
    public long FileSizeLimitBytes { get; init; } = 16L << 20;
    /// <summary>Open file descriptors per process (RLIMIT_NOFILE).</summary>
    public int MaxOpenFiles { get; init; } = 64;
    /// <summary>Processes and threads per run (RLIMIT_NPROC under the run's own uid; see <see cref="SandboxReport.ProcessLimit"/>).</summary>
    public int MaxProcesses { get; init; } = 32;
    /// <summary>Most characters of stdout+stderr kept per program.</summary>
    public int MaxOutputChars { get; init; } = 4096;
    /// <summary>Programs run at the same time by <see cref="CodeExecutor.RunMany"/>.</summary>
    public int MaxParallelism { get; init; } = 2;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad setting.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(PythonExecutable)) throw new ArgumentException("the Python executable must be named");
        if (Timeout <= TimeSpan.Zero) throw new ArgumentException($"the execution timeout must be positive, got {Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        if (MemoryLimitBytes < 64L << 20) throw new ArgumentException($"the memory limit must be at least 64 MiB, got {MemoryLimitBytes} bytes");
        if (FileSizeLimitBytes < 1) throw new ArgumentException($"the file size limit must be ≥ 1 byte, got {FileSizeLimitBytes}");
        if (MaxOpenFiles < 16) throw new ArgumentException($"max open files must be ≥ 16, got {MaxOpenFiles}");
        if (MaxProcesses < 2) throw new ArgumentException($"max processes must be ≥ 2, got {MaxProcesses}");
        if (MaxOutputChars < 0) throw new ArgumentException($"max output chars must be ≥ 0, got {MaxOutputChars}");
        if (MaxParallelism < 1) throw new ArgumentException($"parallelism must be ≥ 1, got {MaxParallelism}");
    }

    /// <summary>The resource limits of a run; RLIMIT_NPROC only when <paramref name="processLimit"/> (it does not hold for root).</summary>
    internal IReadOnlyList<(string Name, long Value)> Rlimits(bool processLimit)
    {
        var limits = new List<(string, long)>
        {
            ("RLIMIT_AS", MemoryLimitBytes), ("RLIMIT_DATA", MemoryLimitBytes), ("RLIMIT_FSIZE", FileSizeLimitBytes),
            ("RLIMIT_NOFILE", MaxOpenFiles), ("RLIMIT_CPU", (long)Math.Ceiling(Timeout.TotalSeconds) + 1), ("RLIMIT_CORE", 0),
        };
        if (processLimit) limits.Add(("RLIMIT_NPROC", MaxProcesses));
        return limits;
    }

    /// <summary><see cref="Rlimits"/> as <c>NAME=value</c>.</summary>
    internal IReadOnlyList<string> RlimitNames(bool processLimit) =>
        Rlimits(processLimit).Select(l => l.Name + "=" + l.Value.ToString(CultureInfo.InvariantCulture)).ToArray();
}
