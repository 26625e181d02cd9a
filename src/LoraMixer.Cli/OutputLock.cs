namespace LoraMixer.Cli;

/// <summary>
/// An exclusive claim on an output path for the length of a run: the OS lock of <c>&lt;path&gt;.lock</c>
/// (opened with <see cref="FileShare.None"/>, an advisory <c>flock</c> on Unix). A second run fails fast
/// instead of writing, or deleting, what the first one makes. The OS drops the lock when its process dies,
/// so the file a killed run leaves behind is simply claimed again; a finished run deletes it.
/// </summary>
internal sealed class OutputLock : IDisposable
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> Held = new(StringComparer.Ordinal);
    private readonly FileStream _stream;

    private OutputLock(string path, FileStream stream)
    {
        LockPath = path;
        _stream = stream;
    }

    /// <summary>The lock file, <c>&lt;path&gt;.lock</c>.</summary>
    public string LockPath { get; }

    /// <summary>
    /// Claims <paramref name="path"/> for this run, creating its parent folder when needed. Fails with one
    /// line naming <paramref name="option"/> when another run holds it or the parent cannot be written.
    /// </summary>
    public static OutputLock Acquire(string path, string option)
    {
        string full = Path.GetFullPath(path);
        string lockPath = Path.TrimEndingDirectorySeparator(full) + ".lock";
        string parent = Path.GetDirectoryName(lockPath)!;
        try
        {
            Directory.CreateDirectory(parent);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string? file = FileOnPath(parent);
            throw new ArgumentException(file is not null
                ? $"{option} {full}: cannot create its folder {parent}, because {file} is a file; choose another path"
                : $"{option} {full}: cannot create its folder {parent}: {IoMessage.Cause(e)}", e);
        }
        // A run that finishes deletes the lock file while still holding it; one that opened that file just
        // before may then hold a lock on a deleted file. Such a lock guards nothing, so it is taken again.
        for (int attempt = 0; ; attempt++)
        {
            FileStream stream;
            try
            {
                stream = new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            }
            catch (IOException e) when (e is not (DirectoryNotFoundException or PathTooLongException) && IsSharingViolation(e))
            {
                throw new ArgumentException(
                    $"{option} {full} is being written by another run (it holds {lockPath}); wait for it to finish or choose another {option}", e);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"{option} {full}: cannot write into {parent}: {IoMessage.Cause(e)}", e);
            }
            if (HoldsPath(lockPath) || attempt >= 10)
            {
                Held[lockPath] = 0;
                return new OutputLock(lockPath, stream);
            }
            stream.Dispose();
        }
    }

    /// <summary>True while this process holds the claim on <paramref name="path"/>.</summary>
    public static bool IsHeld(string path) => Held.ContainsKey(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)) + ".lock");

    /// <inheritdoc />
    public void Dispose()
    {
        if (!Held.TryRemove(LockPath, out _)) return;
        try
        {
            File.Delete(LockPath); // while still locked, so nobody claims the file that is going away
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover lock file is harmless: the next run claims it.
        }
        _stream.Dispose();
    }

    // The nearest existing ancestor of a folder path, when it is a file rather than a folder.
    private static string? FileOnPath(string folder)
    {
        for (string? p = folder; p is not null; p = Path.GetDirectoryName(p))
        {
            if (File.Exists(p)) return p;
            if (Directory.Exists(p)) return null;
        }
        return null;
    }

    // True when the file at the path is the one this process has locked: opening it again conflicts.
    private static bool HoldsPath(string lockPath)
    {
        try
        {
            using var probe = new FileStream(lockPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return false;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static bool IsSharingViolation(IOException e) =>
        e.GetType() == typeof(IOException) && (e.HResult == 11 /* EWOULDBLOCK */ || e.HResult == unchecked((int)0x80070020) || e.Message.Contains("being used by another process", StringComparison.Ordinal));
}
