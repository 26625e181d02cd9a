using System.Text.RegularExpressions;

namespace LoraMixer.Cli;

/// <summary>Turns the file-system exceptions .NET throws (permission, disk full, missing folder) into one line naming the path, the cause and the fix.</summary>
internal static partial class IoMessage
{
    /// <summary>True for an I/O failure raised by .NET itself, whose message is .NET's wording rather than ours.</summary>
    public static bool IsRaw(Exception e) =>
        e is IOException or UnauthorizedAccessException && e.Source is "System.Private.CoreLib" or "System.IO.FileSystem" or "System.Runtime";

    /// <summary>"PATH: cause; fix" (the path as .NET quoted it, when it did).</summary>
    public static string Describe(Exception e)
    {
        var match = QuotedPath().Match(e.Message);
        string cause = Cause(e);
        return match.Success ? $"{match.Groups[1].Value}: {cause}" : cause;
    }

    /// <summary>The cause in words with what to do, e.g. "no space left on the device; free some space".</summary>
    public static string Cause(Exception e) => e switch
    {
        UnauthorizedAccessException => "permission denied; choose a location you can write to",
        FileNotFoundException => "no such file; check the path",
        DirectoryNotFoundException => "a folder on the path does not exist; check the path",
        PathTooLongException => "the path is too long; choose a shorter one",
        IOException { HResult: 28 or 122 } => "no space left on the device; free some space or choose another location", // ENOSPC, EDQUOT
        IOException { HResult: 30 } => "the file system is read-only; choose another location", // EROFS
        IOException { HResult: 20 } => "a part of the path is a file, not a folder; choose another path", // ENOTDIR
        IOException { HResult: 17 } => "it already exists as a file; choose another path", // EEXIST
        IOException { HResult: 5 } => "input/output error of the device; check the disk", // EIO
        _ => FirstSentence(QuotedPath().Replace(e.Message, "").Replace(" :", "").Trim()),
    };

    private static string FirstSentence(string text)
    {
        string line = text.Split('\n')[0].Trim();
        return line.Length == 0 ? "file-system error" : char.ToLowerInvariant(line[0]) + line[1..].TrimEnd('.');
    }

    [GeneratedRegex(@"'(/[^']*|[A-Za-z]:\\[^']*)'")]
    private static partial Regex QuotedPath();
}
