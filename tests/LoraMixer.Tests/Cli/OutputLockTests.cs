using System.Diagnostics;
using LoraMixer.Cli;

namespace LoraMixer.Tests.Cli;

/// <summary>Output claims: one run per output at a time, the loser fails fast and destroys nothing, a dead run's lock is taken over.</summary>
public sealed class OutputLockTests
{
    [Fact]
    public void A_second_claim_fails_fast_naming_the_option_and_a_released_claim_can_be_taken_again()
    {
        string dir = Path.Combine(TestPaths.NewTempDir(), "out");
        using (var first = OutputLock.Acquire(dir, "--out"))
        {
            Assert.True(File.Exists(dir + ".lock"));
            var e = Assert.Throws<ArgumentException>(() => OutputLock.Acquire(dir, "--out"));
            Assert.Contains($"--out {dir} is being written by another run", e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        Assert.False(File.Exists(dir + ".lock"));
        using var again = OutputLock.Acquire(dir, "--out");
    }

    [Fact]
    public void The_loser_of_two_runs_into_one_folder_leaves_the_winners_folder_intact()
    {
        string dir = Path.Combine(TestPaths.NewTempDir(), "out");
        using var other = HoldInAnotherProcess(dir + ".lock");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "work.txt"), "the other run's work");
        // The folder was created after "existed" would have been measured: without the lock the loser deleted it.
        var e = Assert.Throws<ArgumentException>(() => OutputFolder.RemoveOnFailure(dir, _ => false, () => throw new InvalidOperationException("failed")));
        Assert.Contains("being written by another run", e.Message);
        Assert.Equal("the other run's work", File.ReadAllText(Path.Combine(dir, "work.txt")));
    }

    [Fact]
    public void The_lock_of_a_dead_run_is_taken_over()
    {
        string dir = Path.Combine(TestPaths.NewTempDir(), "out");
        var holder = HoldInAnotherProcess(dir + ".lock");
        Assert.Throws<ArgumentException>(() => OutputLock.Acquire(dir, "--out"));
        holder.Dispose(); // killed: the file stays, the OS lock goes
        Assert.True(File.Exists(dir + ".lock"));
        using var claim = OutputLock.Acquire(dir, "--out");
    }

    [Fact]
    public void An_output_under_a_file_is_one_line_naming_the_path()
    {
        string file = Path.Combine(TestPaths.NewTempDir(), "a-file");
        File.WriteAllText(file, "x");
        var e = Assert.Throws<ArgumentException>(() => OutputFolder.ClaimFile(Path.Combine(file, "sub", "out.json"), "--out"));
        Assert.Contains("--out " + Path.Combine(file, "sub", "out.json"), e.Message);
        Assert.Contains($"because {file} is a file", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_full_disk_is_one_line_naming_the_path_and_the_cause()
    {
        var e = Assert.ThrowsAny<IOException>(() => File.WriteAllText("/dev/full", new string('x', 1 << 16)));
        Assert.True(IoMessage.IsRaw(e));
        string message = IoMessage.Describe(e);
        Assert.Equal("/dev/full: no space left on the device; free some space or choose another location", message);
        Assert.Equal("/x/y: permission denied; choose a location you can write to",
            IoMessage.Describe(new UnauthorizedAccessException("Access to the path '/x/y' is denied.")));
    }

    /// <summary>Another process (util-linux <c>flock</c>) holding the OS lock of <paramref name="lockFile"/>, as a running loramixer does.</summary>
    internal static KilledOnDispose HoldInAnotherProcess(string lockFile)
    {
        var start = new ProcessStartInfo("flock") { UseShellExecute = false, RedirectStandardOutput = true };
        foreach (string a in new[] { "--nonblock", "--close", lockFile, "sh", "-c", "echo held; sleep 60" }) start.ArgumentList.Add(a);
        var process = Process.Start(start)!;
        Assert.Equal("held", process.StandardOutput.ReadLine());
        return new KilledOnDispose(process);
    }

    internal sealed class KilledOnDispose(Process process) : IDisposable
    {
        public void Dispose()
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            process.Dispose();
        }
    }
}
