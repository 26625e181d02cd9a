using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace LoraMixer.Evaluation;

/// <summary>
/// Runs Python programs (HumanEval completions with their tests) in separate processes. Each run gets a fresh
/// temporary working folder (deleted afterwards), closed stdin, empty proxy variables, a wall-clock timeout that
/// kills the whole process tree, an address-space limit (<c>RLIMIT_AS</c>) and a guard that replaces socket
/// creation with an error. This is best-effort isolation against accidents (infinite loops, memory bombs, stray
/// network calls), NOT a security sandbox: the code runs as the current user and can still touch the file system,
/// start programs or reach the network through other means. Run untrusted models in a container.
/// </summary>
public sealed class CodeExecutor
{
    private const string NonceVariable = "LORAMIXER_EXEC_NONCE";
    private readonly CodeExecutionOptions _options;

    /// <summary>Creates an executor.</summary>
    /// <exception cref="CodeExecutionNotAllowedException"><see cref="CodeExecutionOptions.AllowCodeExecution"/> is false.</exception>
    public CodeExecutor(CodeExecutionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (!options.AllowCodeExecution) throw new CodeExecutionNotAllowedException();
        _options = options;
    }

    /// <summary>The HumanEval program: prompt + completion, the test, then <c>check(entry_point)</c>.</summary>
    public static string HumanEvalProgram(HumanEvalProblem problem, string completion)
    {
        ArgumentNullException.ThrowIfNull(problem);
        ArgumentNullException.ThrowIfNull(completion);
        return problem.Prompt + completion + "\n" + problem.Test + "\n" + $"check({problem.EntryPoint})" + "\n";
    }

    /// <summary>Runs one HumanEval completion against its tests.</summary>
    public ExecutionResult RunHumanEval(HumanEvalProblem problem, string completion, CancellationToken cancellationToken = default) =>
        Run(HumanEvalProgram(problem, completion), cancellationToken);

    /// <summary>Runs <paramref name="programs"/>, <see cref="CodeExecutionOptions.MaxParallelism"/> at a time; results in input order.</summary>
    public IReadOnlyList<ExecutionResult> RunMany(IReadOnlyList<string> programs, IProgress<(int Done, int Total)>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(programs);
        var results = new ExecutionResult[programs.Count];
        int done = 0;
        Parallel.For(0, programs.Count, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxParallelism, CancellationToken = cancellationToken }, i =>
        {
            results[i] = Run(programs[i], cancellationToken);
            progress?.Report((Interlocked.Increment(ref done), programs.Count));
        });
        return results;
    }

    /// <summary>Runs one Python program under the limits; it passes when it exits 0 having run to its end.</summary>
    public ExecutionResult Run(string program, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(program);
        string dir = Path.Combine(Path.GetTempPath(), "loramixer-exec-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var clock = Stopwatch.StartNew();
        try
        {
            File.WriteAllText(Path.Combine(dir, "program.py"), program);
            File.WriteAllText(Path.Combine(dir, "guard.py"), Guard(_options.MemoryLimitBytes));
            string nonce = Guid.NewGuid().ToString("N");
            var start = new ProcessStartInfo(_options.PythonExecutable)
            {
                WorkingDirectory = dir,
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.ArgumentList.Add("-I"); // isolated: no PYTHON* variables, no user site-packages
            start.ArgumentList.Add(Path.Combine(dir, "guard.py"));
            foreach (string name in new[] { "http_proxy", "https_proxy", "ftp_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "ALL_PROXY" })
                start.Environment[name] = "";
            start.Environment["no_proxy"] = "*";
            start.Environment["HOME"] = dir;
            start.Environment["TMPDIR"] = dir;
            start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
            start.Environment[NonceVariable] = nonce;

            using var process = new Process { StartInfo = start };
            try
            {
                process.Start();
            }
            catch (Win32Exception e)
            {
                return new ExecutionResult(ExecutionOutcome.StartFailed, null,
                    $"could not start {_options.PythonExecutable}: {e.Message}; install Python 3 or set the Python executable", clock.Elapsed.TotalSeconds);
            }
            process.StandardInput.Close();
            var stdout = new CappedReader(process.StandardOutput.BaseStream, _options.MaxOutputChars);
            var stderr = new CappedReader(process.StandardError.BaseStream, _options.MaxOutputChars);

            bool exited;
            using (cancellationToken.Register(() => Kill(process)))
                exited = process.WaitForExit(_options.Timeout);
            if (!exited) Kill(process);
            process.WaitForExit();
            stdout.Wait();
            stderr.Wait();
            cancellationToken.ThrowIfCancellationRequested();

            string output = Truncate(stdout.Head.Replace(nonce, "", StringComparison.Ordinal).TrimEnd() + "\n" + stderr.Head, _options.MaxOutputChars);
            ExecutionOutcome outcome;
            int? exitCode = exited ? process.ExitCode : null;
            if (!exited) outcome = ExecutionOutcome.TimedOut;
            else if (stderr.Tail.Contains("MemoryError", StringComparison.Ordinal) || exitCode == 137) outcome = ExecutionOutcome.MemoryLimit;
            else if (exitCode == 0 && stdout.Tail.Contains(nonce, StringComparison.Ordinal)) outcome = ExecutionOutcome.Passed;
            else outcome = ExecutionOutcome.Failed;
            return new ExecutionResult(outcome, exitCode, output, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
    }

    private static void Kill(Process process)
    {
        try { process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        catch (Win32Exception) { }
    }

    private static string Truncate(string text, int max) =>
        text.Length <= max ? text : text[..max] + $"\n[output truncated at {max} characters]";

    // Runs before the program: limits, socket guard, then program.py as __main__. Prints the nonce only when the
    // program returns normally, so an early sys.exit(0) or os._exit(0) does not count as a pass.
    private static string Guard(long memoryLimit) => $$"""
        import os, resource, runpy, socket, sys
        _nonce = os.environ.pop("{{NonceVariable}}", "")
        for _limit in (resource.RLIMIT_AS, resource.RLIMIT_DATA):
            try:
                resource.setrlimit(_limit, ({{memoryLimit.ToString(CultureInfo.InvariantCulture)}}, {{memoryLimit.ToString(CultureInfo.InvariantCulture)}}))
            except (ValueError, OSError):
                pass
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except (ValueError, OSError):
            pass
        def _network_disabled(*args, **kwargs):
            raise PermissionError("network access is disabled while running generated code")
        class _NoSocket(socket.socket):
            def __init__(self, *args, **kwargs):
                _network_disabled()
        socket.socket = _NoSocket
        socket.SocketType = _NoSocket
        for _name in ("create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo", "gethostbyname", "gethostbyname_ex"):
            setattr(socket, _name, _network_disabled)
        import _socket
        _socket.socket = _NoSocket
        _socket.SocketType = _NoSocket
        sys.argv = ["program.py"]
        runpy.run_path(os.path.join(os.getcwd(), "program.py"), run_name="__main__")
        sys.stdout.flush()
        sys.stdout.write("\n" + _nonce + "\n")
        sys.stdout.flush()
        """;

    // Reads a stream to its end on a background task, keeping the first and last characters only.
    private sealed class CappedReader
    {
        private const int TailChars = 2048;
        private readonly StringBuilder _head = new();
        private readonly StringBuilder _tail = new();
        private readonly Task _task;

        public CappedReader(Stream stream, int headChars)
        {
            _task = Task.Run(async () =>
            {
                using var reader = new StreamReader(stream, Encoding.UTF8);
                var buffer = new char[4096];
                int read;
                while ((read = await reader.ReadAsync(buffer.AsMemory()).ConfigureAwait(false)) > 0)
                {
                    int keep = Math.Min(read, Math.Max(0, headChars + 1 - _head.Length));
                    _head.Append(buffer, 0, keep);
                    _tail.Append(buffer, 0, read);
                    if (_tail.Length > 2 * TailChars) _tail.Remove(0, _tail.Length - TailChars);
                }
            });
        }

        public string Head => _head.ToString();
        public string Tail => _tail.ToString();

        public void Wait()
        {
            try { _task.Wait(TimeSpan.FromSeconds(5)); }
            catch (AggregateException) { }
        }
    }
}
