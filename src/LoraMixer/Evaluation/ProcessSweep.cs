using System.Globalization;
using System.Runtime.InteropServices;

namespace LoraMixer.Evaluation;

/// <summary>Kills what a sandboxed run left behind: its process group, and every process of its private uid.</summary>
internal static partial class ProcessSweep
{
    private const int SigKill = 9;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>SIGKILL to the process group <paramref name="pgid"/> (no error when it is already gone).</summary>
    public static void KillGroup(int pgid)
    {
        if (pgid > 1) Kill(-pgid, SigKill);
    }

    /// <summary>SIGKILL to one process.</summary>
    public static void KillProcess(int pid)
    {
        if (pid > 1) Kill(pid, SigKill);
    }

    /// <summary>SIGKILLs every process whose real uid is <paramref name="uid"/> until none is left; false if some survived.</summary>
    public static bool KillUser(int uid)
    {
        for (int attempt = 0; attempt < 100; attempt++)
        {
            var pids = ProcessesOf(uid);
            if (pids.Count == 0) return true;
            foreach (int pid in pids) Kill(pid, SigKill);
            Thread.Sleep(10);
        }
        return ProcessesOf(uid).Count == 0;
    }

    // Live (not zombie) processes whose real uid is uid, from /proc.
    private static List<int> ProcessesOf(int uid)
    {
        var found = new List<int>();
        string wanted = uid.ToString(CultureInfo.InvariantCulture);
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            string[] lines;
            try { lines = File.ReadAllLines(Path.Combine(dir, "status")); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            string? state = lines.FirstOrDefault(l => l.StartsWith("State:", StringComparison.Ordinal));
            if (state is not null && (state.Contains('Z') || state.Contains('X'))) continue;
            string? uids = lines.FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal));
            if (uids is null) continue;
            var fields = uids.Split(['\t', ' '], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 1 && fields[1] == wanted) found.Add(pid);
        }
        return found;
    }

    /// <summary>Whether this process may send signals through libc (Linux).</summary>
    public static bool Supported => OperatingSystem.IsLinux();
}
