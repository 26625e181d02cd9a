namespace LoraMixer.Tests;

/// <summary>Locates the repository, its committed fixtures and the ../shared folder beside it.</summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>
    /// ../shared beside the repository, or null when absent (tests then skip with a reason). Setting the
    /// environment variable LORAMIXER_TESTS_HIDE_SHARED=1 hides it, to check that those tests report as skipped.
    /// </summary>
    public static string? Shared
    {
        get
        {
            if (Environment.GetEnvironmentVariable("LORAMIXER_TESTS_HIDE_SHARED") == "1") return null;
            string path = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
            return Directory.Exists(path) ? path : null;
        }
    }

    /// <summary>
    /// The path <paramref name="parts"/> under ../shared; the calling [SkippableFact] is reported as skipped
    /// (not passed) when ../shared or that file or folder is absent.
    /// </summary>
    public static string RequireShared(params string[] parts)
    {
        Skip.If(Shared is null, "../shared is not available beside the repository");
        string path = Path.Combine([Shared!, .. parts]);
        Skip.IfNot(File.Exists(path) || Directory.Exists(path), $"../shared/{string.Join('/', parts)} is absent");
        return path;
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
