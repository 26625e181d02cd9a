namespace LoraMixer.Evaluation;

/// <summary>Generated code would have to run but the user has not allowed it (<c>--allow-code-execution</c>).</summary>
public sealed class CodeExecutionNotAllowedException : Exception
{
    /// <summary>Creates the exception with the standard message.</summary>
    public CodeExecutionNotAllowedException()
        : base("HumanEval runs model-generated Python code; it is refused unless you pass --allow-code-execution "
               + "(each run is sandboxed: own session, pid and network namespaces, an unused uid or a pids cgroup, rlimits, reliability guard; the result says which are active).") { }

    /// <summary>Creates the exception with a custom message.</summary>
    public CodeExecutionNotAllowedException(string message) : base(message) { }

    /// <summary>Creates the exception with a custom message and cause.</summary>
    public CodeExecutionNotAllowedException(string message, Exception inner) : base(message, inner) { }
}
