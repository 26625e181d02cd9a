using System.Text;

namespace LoraMixer.Cli;

/// <summary>Guards the folders training commands write: refuse to replace foreign folders, remove what a failed run created.</summary>
internal static class OutputFolder
{
    /// <summary>
    /// Runs <paramref name="body"/> holding the <see cref="OutputLock"/> of <paramref name="dir"/> (another
    /// run into the same folder fails fast instead of sharing or deleting it); if the body throws and the
    /// folder did not exist before and holds nothing resumable (per <paramref name="resumable"/>), it is
    /// removed, so a failed run leaves nothing half-made.
    /// </summary>
    public static int RemoveOnFailure(string dir, Func<string, bool> resumable, Func<int> body)
    {
        using var claim = OutputLock.IsHeld(dir) ? null : OutputLock.Acquire(dir, "--out");
        bool existed = Directory.Exists(dir);
        try
        {
            return body();
        }
        catch
        {
            try
            {
                if (!existed && Directory.Exists(dir) && !resumable(dir)) Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // The original failure matters more than a leftover folder.
            }
            throw;
        }
    }

    /// <summary>Fails when <paramref name="dir"/> exists, is not empty and is not what the command writes (so replacing it could lose data).</summary>
    public static void CheckReplaceable(string dir, string option, Func<string, bool> isOurs, string what)
    {
        if (File.Exists(dir)) throw new ArgumentException($"{option} {dir} is a file; give a folder path");
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any() && !isOurs(dir))
            throw new ArgumentException($"{option} {dir} already exists and is not {what}; choose a new folder");
    }

    /// <summary>
    /// Checks a file that <paramref name="option"/> names before any work starts: not a folder, its folder
    /// created and writable; returns the claim to hold until the file is written.
    /// </summary>
    public static OutputLock ClaimFile(string path, string option)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new ArgumentException($"{option} {full} is a folder; give a file name");
        return OutputLock.Acquire(full, option);
    }

    /// <summary>
    /// Checks a folder that <paramref name="option"/> names before any work starts: not a file, its parent
    /// created and writable; returns the claim to hold until the folder is written.
    /// </summary>
    public static OutputLock ClaimFolder(string path, string option)
    {
        string full = Path.GetFullPath(path);
        if (File.Exists(full)) throw new ArgumentException($"{option} {full} is a file; give a folder path");
        return OutputLock.Acquire(full, option);
    }

    /// <summary>Writes a text file via a temporary sibling and a rename, so readers never see half a file.</summary>
    public static void WriteText(string path, string text)
    {
        string temp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            File.WriteAllText(temp, text, new UTF8Encoding(false));
            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
