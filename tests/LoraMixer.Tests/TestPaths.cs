namespace LoraMixer.Tests;

/// <summary>Locates the repository, its committed fixtures and the ../shared folder beside it.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>../shared beside the repository, or null when absent (tests then skip with a reason).</summary>
    public static string? Shared
    {
        get
        {
            string path = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
            return Directory.Exists(path) ? path : null;
        }
    }

    /// <summary>tests/LoraMixer.Tests/Fixtures in the source tree.</summary>
    public static string Fixtures => Path.Combine(RepoRoot, "tests", "LoraMixer.Tests", "Fixtures");

    /// <summary>A fresh empty temporary directory.</summary>
    public static string NewTempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "loramixer-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "LoraMixer.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("LoraMixer.slnx not found above " + AppContext.BaseDirectory);
    }
}
