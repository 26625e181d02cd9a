using System.Text.RegularExpressions;
using LoraMixer.Evaluation;

namespace LoraMixer.Tests.Evaluation;

/// <summary>
/// Hostile programs against <see cref="CodeExecutor"/>'s sandbox. Several bypass the Python guard on purpose (raw
/// fork through ctypes) to show that the operating-system layers contain them on their own.
/// </summary>
public sealed class SandboxTests
{
    private static readonly CodeExecutor Executor = new(new CodeExecutionOptions { PythonExecutable = EvalTestData.Python, AllowCodeExecution = true });

    // Prints the program's path first, so the test knows the run folder (it is in every sandboxed process's command line).
    private const string Preamble = "import ctypes, os, sys, time\nprint(__file__, flush=True)\nlibc = ctypes.CDLL(None, use_errno=True)\n";

    [Fact]
    public void The_sandbox_report_names_every_layer_as_active_or_unavailable()
    {
        var report = Executor.Sandbox;
        Assert.True(report.Guard);
        Assert.Contains(report.Rlimits, l => l.StartsWith("RLIMIT_FSIZE=", StringComparison.Ordinal));
        Assert.Contains(report.Rlimits, l => l.StartsWith("RLIMIT_NOFILE=", StringComparison.Ordinal));
        Assert.Contains(report.Rlimits, l => l.StartsWith("RLIMIT_AS=", StringComparison.Ordinal));
        Assert.Contains(report.Rlimits, l => l.StartsWith("RLIMIT_CPU=", StringComparison.Ordinal));
        Assert.Equal(report.ProcessLimit, report.Rlimits.Any(l => l.StartsWith("RLIMIT_NPROC=", StringComparison.Ordinal)));
        (bool On, string Name)[] layers = [(report.Session, "session"), (report.PidNamespace, "pid-namespace"), (report.NetNamespace, "net-namespace"), (report.UnprivilegedUser, "user")];
        foreach (var (on, name) in layers)
        {
            Assert.Equal(on, report.Level.Split('+').Contains(name));
            Assert.Equal(!on, report.Unavailable.Any(u => u.StartsWith(name + ":", StringComparison.Ordinal)));
        }
    }

    [Fact]
    public void The_guard_disables_fork_system_and_subprocess()
    {
        foreach (string call in new[] { "os.fork()", "os.system('true')", "subprocess.Popen(['true'])", "shutil.rmtree('/nonexistent')", "os.kill(1, 9)" })
        {
            var result = Executor.Run($"import os, shutil, subprocess\n{call}\n");
            Assert.Equal(ExecutionOutcome.Failed, result.Outcome);
            Assert.Contains("'NoneType' object is not callable", result.Output);
        }
        // The program's imports still work after the guard.
        Assert.True(Executor.Run("import math, subprocess, collections\nfrom typing import List\nassert math.gcd(4, 6) == 2\n").Passed);
    }

    [SkippableFact]
    public void A_fork_storm_is_capped_by_the_process_limit_and_nothing_is_left_running()
    {
        Skip.IfNot(Executor.Sandbox.ProcessLimit, "no process limit here: " + string.Join("; ", Executor.Sandbox.Unavailable));
        var result = Executor.Run(Preamble +
            "made = refused = 0\n" +
            "for i in range(200):\n" +
            "    pid = libc.fork()\n" +
            "    if pid == 0:\n        time.sleep(60)\n        libc._exit(0)\n" +
            "    elif pid > 0:\n        made += 1\n" +
            "    else:\n        refused += 1\n" +
            "print('made', made, 'refused', refused, flush=True)\n");
        var counts = Regex.Match(result.Output, @"made (\d+) refused (\d+)");
        Assert.True(counts.Success, result.Output);
        int made = int.Parse(counts.Groups[1].Value);
        Assert.True(made < 200 && made <= new CodeExecutionOptions().MaxProcesses, result.Output);
        Assert.Equal(200 - made, int.Parse(counts.Groups[2].Value));
        Assert.Empty(LiveProcessesMentioning(RunFolder(result)));
    }

    [SkippableFact]
    public void Without_the_unprivileged_uid_the_pids_cgroup_caps_a_fork_storm()
    {
        Skip.IfNot(Environment.IsPrivilegedProcess && File.Exists("/usr/bin/python3"), "needs root and /usr/bin/python3");
        // An interpreter only root may execute cannot run as an unused uid, so the sandbox falls back.
        string python = Path.Combine(TestPaths.NewTempDir(), "python3");
        File.WriteAllText(python, "#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(python, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var executor = new CodeExecutor(new CodeExecutionOptions { PythonExecutable = python, AllowCodeExecution = true, MaxProcesses = 8 });
        Assert.False(executor.Sandbox.UnprivilegedUser);
        Assert.Contains(executor.Sandbox.Unavailable, u => u.StartsWith("user:", StringComparison.Ordinal));
        Skip.IfNot(executor.Sandbox.PidsCgroup, "no pids cgroup here: " + string.Join("; ", executor.Sandbox.Unavailable));
        Assert.True(executor.Sandbox.ProcessLimit);
        var result = executor.Run(Preamble +
            "made = 0\n" +
            "for i in range(200):\n" +
            "    pid = libc.fork()\n" +
            "    if pid == 0:\n        time.sleep(60)\n        libc._exit(0)\n" +
            "    elif pid > 0:\n        made += 1\n" +
            "print('made', made, flush=True)\n");
        int made = int.Parse(Regex.Match(result.Output, @"made (\d+)").Groups[1].Value);
        Assert.True(made < 8, result.Output);
        Assert.Empty(LiveProcessesMentioning(RunFolder(result)));
    }

    [Fact]
    public void A_double_forked_daemon_dies_when_the_run_ends()
    {
        string dir = SharedDir();
        string heartbeat = Path.Combine(dir, "heartbeat");
        var result = Executor.Run(Preamble + DaemonCode(heartbeat) +
            $"while not os.path.exists({Py(heartbeat)}):\n    time.sleep(0.01)\n" +
            "print('daemon started')\n");
        Assert.True(result.Passed, result.Output);
        AssertStopped(heartbeat, RunFolder(result));
    }

    [Fact]
    public void An_infinite_loop_times_out_and_its_forked_child_is_killed()
    {
        string dir = SharedDir();
        string heartbeat = Path.Combine(dir, "heartbeat");
        var executor = new CodeExecutor(new CodeExecutionOptions { PythonExecutable = EvalTestData.Python, AllowCodeExecution = true, Timeout = TimeSpan.FromSeconds(2) });
        var result = executor.Run(Preamble + DaemonCode(heartbeat) +
            $"while not os.path.exists({Py(heartbeat)}):\n    time.sleep(0.01)\n" +
            "while True:\n    pass\n");
        Assert.Equal(ExecutionOutcome.TimedOut, result.Outcome);
        Assert.True(File.Exists(heartbeat), "the daemon never started: " + result.Output);
        AssertStopped(heartbeat, RunFolder(result));
    }

    [Fact]
    public void A_two_gigabyte_writer_is_stopped_by_the_file_size_limit()
    {
        var result = Executor.Run(Preamble +
            "try:\n" +
            "    with open('big.bin', 'wb') as f:\n" +
            "        for i in range(2048):\n            f.write(b'\\0' * (1 << 20))\n" +
            "finally:\n    print('size', os.path.getsize('big.bin'), flush=True)\n");
        Assert.Equal(ExecutionOutcome.Failed, result.Outcome);
        Assert.Contains("File too large", result.Output);
        long size = long.Parse(Regex.Match(result.Output, @"size (\d+)").Groups[1].Value);
        Assert.True(size <= new CodeExecutionOptions().FileSizeLimitBytes, result.Output);
        Assert.False(Directory.Exists(RunFolder(result)));
    }

    [Fact]
    public void A_secret_environment_variable_of_the_host_is_not_visible()
    {
        string secret = "s3cret-" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable("LORAMIXER_TEST_SECRET", secret);
        try
        {
            var result = Executor.Run("import os\nprint(repr(os.environ.get('LORAMIXER_TEST_SECRET')))\nprint(sorted(os.environ))\n" +
                "print(open('/proc/self/environ').read())\n");
            Assert.True(result.Passed, result.Output);
            Assert.DoesNotContain(secret, result.Output);
            Assert.StartsWith("None", result.Output);
            Assert.Contains("'HOME'", result.Output);
        }
        finally { Environment.SetEnvironmentVariable("LORAMIXER_TEST_SECRET", null); }
    }

    [SkippableFact]
    public void Writing_outside_the_run_folder_fails()
    {
        Skip.IfNot(Executor.Sandbox.UnprivilegedUser, "no unprivileged uid here: " + string.Join("; ", Executor.Sandbox.Unavailable));
        string target = Path.Combine(TestPaths.NewTempDir(), "escaped.txt");
        var result = Executor.Run($"open({Py(target)}, 'w').write('escaped')\n");
        Assert.Equal(ExecutionOutcome.Failed, result.Outcome);
        Assert.Contains("PermissionError", result.Output);
        Assert.False(File.Exists(target));
    }

    [Fact]
    public void Infinite_output_is_capped_and_the_run_ends()
    {
        var executor = new CodeExecutor(new CodeExecutionOptions { PythonExecutable = EvalTestData.Python, AllowCodeExecution = true, MaxOutputChars = 200 });
        var result = executor.Run(Preamble + "while True:\n    print('x' * 1000)\n");
        Assert.Equal(ExecutionOutcome.TimedOut, result.Outcome);
        Assert.True(result.Output.Length < 400, $"{result.Output.Length} characters kept");
        Assert.Contains("truncated", result.Output);
        Assert.Empty(LiveProcessesMentioning(RunFolder(result)));
    }

    [SkippableFact]
    public void The_network_namespace_has_no_interface_but_loopback()
    {
        Skip.IfNot(Executor.Sandbox.NetNamespace, "no network namespace here: " + string.Join("; ", Executor.Sandbox.Unavailable));
        var result = Executor.Run("lines = open('/proc/net/dev').read().splitlines()[2:]\nprint(sorted(l.split(':')[0].strip() for l in lines))\n");
        Assert.True(result.Passed, result.Output);
        Assert.StartsWith("['lo']", result.Output);
    }

    // A child that starts its own session, forks again and exits, leaving a grandchild that bumps a counter in
    // the heartbeat file every 50 ms for good.
    private static string DaemonCode(string heartbeat) =>
        "if libc.fork() == 0:\n" +
        "    libc.setsid()\n" +
        "    if libc.fork() != 0:\n        libc._exit(0)\n" +
        "    n = 0\n" +
        "    while True:\n" +
        "        n += 1\n" +
        $"        with open({Py(heartbeat)} + '.tmp', 'w') as f:\n            f.write(str(n))\n" +
        $"        libc.rename(({Py(heartbeat)} + '.tmp').encode(), {Py(heartbeat)}.encode())\n" +
        "        time.sleep(0.05)\n";

    // The heartbeat no longer changes and no process of the run is alive.
    private static void AssertStopped(string heartbeat, string runFolder)
    {
        Assert.Empty(LiveProcessesMentioning(runFolder));
        string before = File.ReadAllText(heartbeat);
        Thread.Sleep(500);
        Assert.Equal(before, File.ReadAllText(heartbeat));
    }

    // A folder under the test's temp folder that the run's uid may write to.
    private static string SharedDir()
    {
        string dir = TestPaths.NewTempDir();
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(dir, (UnixFileMode)0b111_111_111);
        return dir;
    }

    private static string RunFolder(ExecutionResult result)
    {
        string file = result.Output.Split('\n')[0].Trim();
        Assert.EndsWith("program.py", file);
        return Path.GetDirectoryName(file)!;
    }

    /// <summary>Pids of live (not zombie) processes whose command line contains <paramref name="text"/>.</summary>
    private static List<int> LiveProcessesMentioning(string text)
    {
        var found = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || pid == Environment.ProcessId) continue;
            try
            {
                string cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (!cmdline.Contains(text, StringComparison.Ordinal)) continue;
                string state = File.ReadAllLines(Path.Combine(dir, "status")).FirstOrDefault(l => l.StartsWith("State:", StringComparison.Ordinal)) ?? "";
                if (!state.Contains('Z') && !state.Contains('X')) found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    private static string Py(string s) => "'" + s.Replace("\\", "\\\\").Replace("'", "\\'") + "'";
}
