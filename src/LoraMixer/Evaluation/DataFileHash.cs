using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace LoraMixer.Evaluation;

/// <summary>A data file a result was computed from: its role (evaluated, exemplars), full path and SHA-256.</summary>
/// <param name="Role">"eval" (the scored split) or "fewshot" (the exemplar split).</param>
/// <param name="Path">Full path.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the file's bytes.</param>
public sealed record DataFileHash(string Role, string Path, string Sha256)
{
    // Hashing a 67k-line train split for every seed of an experiment is wasted work; keyed by path, size and time.
    private static readonly ConcurrentDictionary<(string, long, DateTime), string> Cache = new();

    /// <summary>Hashes <paramref name="path"/> (cached while its size and write time are unchanged).</summary>
    public static DataFileHash Of(string role, string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        var info = new FileInfo(full);
        string sha = Cache.GetOrAdd((full, info.Length, info.LastWriteTimeUtc), _ =>
        {
            using var stream = File.OpenRead(full);
            return Convert.ToHexStringLower(SHA256.HashData(stream));
        });
        return new DataFileHash(role, full, sha);
    }
}
