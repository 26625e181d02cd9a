using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace LoraMixer.Evaluation;

/// <summary>
/// Detects once per interpreter which isolation layers work here (setsid, unshare's pid and network namespaces,
/// setpriv to an unused uid, else a cgroup with pids.max) and builds the command line that wraps the interpreter in them, in that order:
/// <c>setsid -w unshare --pid --fork --kill-child --mount-proc --net setpriv --reuid=U ... python3 -I guard.py</c>.
/// </summary>
internal sealed class SandboxLauncher
{
    private static readonly ConcurrentDictionary<string, SandboxLauncher> Cache = new(StringComparer.Ordinal);
    private static readonly string[] SystemPath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

    /// <summary>The PATH given to the sandboxed program.</summary>
    public const string SandboxPath = "/usr/local/bin:/usr/bin:/bin";

    private readonly string? _setsid;
    private readonly string? _unshare;
    private readonly IReadOnlyList<string> _unshareArgs;
    private readonly string? _setpriv;
    private readonly string? _pidsCgroupRoot;

    private SandboxLauncher(string? python, string? setsid, string? unshare, IReadOnlyList<string> unshareArgs, string? setpriv, SandboxReport report,
        string? pidsCgroupRoot = null)
    {
        _pidsCgroupRoot = pidsCgroupRoot;
        Python = python;
        _setsid = setsid;
        _unshare = unshare;
        _unshareArgs = unshareArgs;
        _setpriv = setpriv;
        Report = report;
    }

    /// <summary>The interpreter's full path, or null when it cannot be found.</summary>
    public string? Python { get; }

    /// <summary>What is active.</summary>
    public SandboxReport Report { get; }

    /// <summary>The launcher for <paramref name="options"/>' interpreter (detected on first use, then cached).</summary>
    public static SandboxLauncher For(CodeExecutionOptions options) =>
        Cache.GetOrAdd(options.ToString(), _ => Detect(options));

    /// <summary>A fresh cgroup limited to <paramref name="maxProcesses"/> pids, or null when <see cref="SandboxReport.PidsCgroup"/> is off.</summary>
    public string? NewPidsCgroup(int maxProcesses)
    {
        if (_pidsCgroupRoot is null) return null;
        string dir = Path.Combine(_pidsCgroupRoot, "loramixer-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "pids.max"), maxProcesses.ToString(CultureInfo.InvariantCulture));
        return dir;
    }

    /// <summary>Kills every process in <paramref name="cgroup"/> and removes it.</summary>
    public static void RemovePidsCgroup(string cgroup)
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            try
            {
                var pids = File.ReadAllLines(Path.Combine(cgroup, "cgroup.procs")).Where(l => l.Length > 0).Select(l => int.Parse(l, CultureInfo.InvariantCulture)).ToArray();
                foreach (int pid in pids) ProcessSweep.KillProcess(pid);
                if (pids.Length == 0) { Directory.Delete(cgroup); return; }
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { return; }
            Thread.Sleep(10);
        }
    }

    // A cgroup folder (v1 pids hierarchy, or v2 with the pids controller) where a child with pids.max can be made, or null with the reason.
    private static string? PidsCgroupRoot(out string reason)
    {
        foreach (string root in new[] { "/sys/fs/cgroup/pids", "/sys/fs/cgroup" })
        {
            if (!Directory.Exists(root)) continue;
            string probe = Path.Combine(root, "loramixer-probe-" + Guid.NewGuid().ToString("N"));
            try
            {
                Directory.CreateDirectory(probe);
                bool ok = File.Exists(Path.Combine(probe, "pids.max"));
                Directory.Delete(probe);
                if (ok) { reason = ""; return root; }
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        reason = "no writable cgroup with the pids controller under /sys/fs/cgroup";
        return null;
    }

    /// <summary>A fresh uid no account uses, for one run.</summary>
    public static int NewUid() => Random.Shared.Next(1 << 24, 1 << 30);

    /// <summary>The program and arguments that run <paramref name="script"/> under the active layers as <paramref name="uid"/>.</summary>
    public (string FileName, List<string> Arguments) Command(string script, int? uid)
    {
        var args = new List<string>();
        if (_unshare is not null) { args.Add(_unshare); args.AddRange(_unshareArgs); }
        if (_setpriv is not null && uid is int u) args.AddRange(SetprivArgs(_setpriv, u));
        args.Add(Python!);
        args.Add("-I");
        args.Add(script);
        if (_setsid is not null) return (_setsid, ["-w", .. args]);
        return (args[0], args.Skip(1).ToList());
    }

    private static IEnumerable<string> SetprivArgs(string setpriv, int uid)
    {
        string id = uid.ToString(CultureInfo.InvariantCulture);
        return [setpriv, "--reuid=" + id, "--regid=" + id, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"];
    }

    /// <summary>The full path of <paramref name="name"/> (searched on PATH and the system folders when it has no '/'), or null.</summary>
    public static string? Resolve(string name)
    {
        if (name.Contains('/')) return File.Exists(name) ? Path.GetFullPath(name) : null;
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(SystemPath);
        return dirs.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
    }

    private static SandboxLauncher Detect(CodeExecutionOptions options)
    {
        string? python = Resolve(options.PythonExecutable);
        var unavailable = new List<string>();
        if (!OperatingSystem.IsLinux())
        {
            unavailable.Add("session, namespaces, user: only on Linux");
            return new SandboxLauncher(python, null, null, [], null,
                new SandboxReport(false, false, false, false, false, options.RlimitNames(processLimit: false), true, unavailable));
        }
        string? setsid = Resolve("setsid");
        string? sessionProblem = setsid is null ? "setsid not found (util-linux)" : Probe(setsid, "-w", "true");
        if (sessionProblem is not null) { unavailable.Add("session: " + sessionProblem); setsid = null; }

        string? unshare = Resolve("unshare");
        var unshareArgs = new List<string>();
        bool pid = false, net = false;
        if (unshare is null)
        {
            unavailable.Add("pid-namespace: unshare not found (util-linux)");
            unavailable.Add("net-namespace: unshare not found (util-linux)");
        }
        else
        {
            string[] pidArgs = ["--pid", "--fork", "--kill-child", "--mount-proc"];
            string? problem = Probe(unshare, [.. pidArgs, "true"]);
            if (problem is null) { pid = true; unshareArgs.AddRange(pidArgs); }
            else unavailable.Add("pid-namespace: " + problem);
            problem = Probe(unshare, "--net", "true");
            if (problem is null) { net = true; unshareArgs.Add("--net"); }
            else unavailable.Add("net-namespace: " + problem);
        }
        if (unshareArgs.Count == 0) unshare = null;

        string? setpriv = Resolve("setpriv");
        bool user = false;
        if (!Environment.IsPrivilegedProcess) unavailable.Add("user: not running as root, so cannot switch to an unused uid; the process count is not limited");
        else if (setpriv is null) unavailable.Add("user: setpriv not found (util-linux); the process count is not limited (RLIMIT_NPROC does not hold for root)");
        else if (python is null) unavailable.Add($"user: {options.PythonExecutable} not found");
        else
        {
            // The interpreter must be reachable by an unprivileged uid (e.g. not under /root) from a run folder.
            string dir = CodeExecutor.NewRunFolder();
            try
            {
                int uid = NewUid();
                string? problem = Probe([.. SetprivArgs(setpriv, uid), python, "-I", "-c",
                    $"import os, sys; open('probe', 'w').close(); sys.exit(0 if os.getuid() == {uid.ToString(CultureInfo.InvariantCulture)} else 3)"], dir);
                ProcessSweep.KillUser(uid);
                if (problem is null) user = true;
                else unavailable.Add($"user: {python} does not run as an unprivileged uid ({problem}); the process count is not limited");
            }
            finally { CodeExecutor.DeleteRunFolder(dir); }
        }
        if (!user) setpriv = null;
        string? cgroupRoot = null;
        if (!user)
        {
            string reason = "not running as root";
            if (Environment.IsPrivilegedProcess) cgroupRoot = PidsCgroupRoot(out reason);
            if (cgroupRoot is null) unavailable.Add("pids-cgroup: " + reason);
        }
        return new SandboxLauncher(python, setsid, unshare, unshareArgs, setpriv,
            new SandboxReport(setsid is not null, pid, net, user, cgroupRoot is not null, options.RlimitNames(processLimit: user), true, unavailable), cgroupRoot);
    }

    private static string? Probe(string program, params string[] args) => Probe([program, .. args], null);

    // Runs a probe command; null when it exits 0, otherwise the reason in a few words.
    private static string? Probe(IReadOnlyList<string> command, string? workingDirectory)
    {
        var start = new ProcessStartInfo(command[0])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (string a in command.Skip(1)) start.ArgumentList.Add(a);
        start.Environment.Clear();
        start.Environment["PATH"] = SandboxPath;
        try
        {
            using var process = Process.Start(start)!;
            process.StandardInput.Close();
            var error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                return $"{Path.GetFileName(command[0])} did not finish within 10 s";
            }
            if (process.ExitCode == 0) return null;
            string message = error.Wait(TimeSpan.FromSeconds(2)) ? error.Result.Trim().Split('\n')[^1].Trim() : "";
            return $"{Path.GetFileName(command[0])} failed with exit code {process.ExitCode}" + (message.Length > 0 ? ": " + message : "");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"{Path.GetFileName(command[0])} could not start: {e.Message}";
        }
    }
}
