namespace LoraMixer.Evaluation;

/// <summary>How a program run by <see cref="CodeExecutor"/> ended.</summary>
public enum ExecutionOutcome
{
    /// <summary>Exited 0 after running to the end (every assertion held).</summary>
    Passed,
    /// <summary>Raised, exited non-zero or exited early.</summary>
    Failed,
    /// <summary>Ran past the timeout and was killed with its child processes.</summary>
    TimedOut,
    /// <summary>Ran out of its memory limit (MemoryError or killed by the kernel).</summary>
    MemoryLimit,
    /// <summary>The interpreter could not be started.</summary>
    StartFailed,
}
