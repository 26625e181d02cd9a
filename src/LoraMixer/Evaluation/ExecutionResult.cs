namespace LoraMixer.Evaluation;

/// <summary>The result of running one program.</summary>
/// <param name="Outcome">How it ended.</param>
/// <param name="ExitCode">The process exit code (null when killed or not started).</param>
/// <param name="Output">stdout then stderr, truncated to the configured length.</param>
/// <param name="Seconds">Wall-clock time.</param>
public sealed record ExecutionResult(ExecutionOutcome Outcome, int? ExitCode, string Output, double Seconds)
{
    /// <summary>Whether the program passed.</summary>
    public bool Passed => Outcome == ExecutionOutcome.Passed;
}
