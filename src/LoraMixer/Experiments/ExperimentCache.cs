using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace LoraMixer.Experiments;

/// <summary>
/// When a finished step of a run may be reused. The key hashes the code version (<see cref="CodeVersion"/>: the
/// library's informational version and its module version id, which a deterministic build derives from the
/// compiled code, so any code change gives a new one), the TorchSharp version, every recipe setting, the base
/// model's files and every data file. A result file counts as done only when it carries the current key; a seed
/// folder made under another key (or before keys existed) is moved to <c>RUN/stale/</c> before anything runs, so
/// experts, mixers and results of older code or settings are never mixed with new ones.
/// </summary>
public static class ExperimentCache
{
    /// <summary>The file in each seed folder that names the key its contents were made under.</summary>
    public const string KeyFile = "cache_key.txt";

    /// <summary>The code that computes results: informational version and module version id of LoraMixer.</summary>
    public static string CodeVersion { get; } = ComputeCodeVersion();

    /// <summary>The run's key: code, TorchSharp, recipe settings, base model and data hashes.</summary>
    public static string RunKey(string recipeHash, string? baseModelSha256, IEnumerable<KeyValuePair<string, string>> dataHashes)
    {
        var text = new StringBuilder()
            .Append("code=").Append(CodeVersion).Append('\n')
            .Append("torchsharp=").Append(typeof(TorchSharp.torch).Assembly.GetName().Version).Append('\n')
            .Append("recipe=").Append(recipeHash).Append('\n')
            .Append("base=").Append(baseModelSha256).Append('\n');
        foreach (var (file, sha) in dataHashes.OrderBy(d => d.Key, StringComparer.Ordinal)) text.Append("data=").Append(sha).Append(' ').Append(Path.GetFileName(file)).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>The key of one result: the run's key, the method and the seed.</summary>
    public static string ResultKey(string runKey, string method, int seed) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{runKey}\n{method}\n{seed}")));

    /// <summary>Whether <paramref name="resultPath"/> exists and was written under <paramref name="key"/>.</summary>
    public static bool IsFresh(string resultPath, string key)
    {
        if (!File.Exists(resultPath)) return false;
        try
        {
            return JsonNode.Parse(File.ReadAllText(resultPath)) is JsonObject json && json["cache_key"]?.GetValue<string>() == key;
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or FormatException)
        {
            return false;
        }
    }

    /// <summary>
    /// Makes <paramref name="seedDir"/> hold only work made under <paramref name="runKey"/>: a folder with other
    /// content and another (or no) key moves to <c>RUN/stale/&lt;time&gt;-seed-&lt;s&gt;</c>; then the key is written.
    /// </summary>
    /// <returns>Where stale work went, or null.</returns>
    public static string? Retire(string seedDir, string runKey)
    {
        string keyPath = Path.Combine(seedDir, KeyFile);
        string? existing = File.Exists(keyPath) ? File.ReadAllText(keyPath).Trim() : null;
        string? moved = null;
        if (existing != runKey && Directory.Exists(seedDir) && Directory.EnumerateFileSystemEntries(seedDir).Any())
        {
            string runDir = Path.GetDirectoryName(Path.GetFullPath(seedDir).TrimEnd(Path.DirectorySeparatorChar))!;
            moved = Path.Combine(runDir, "stale", $"{DateTime.UtcNow:yyyyMMddTHHmmssfff}-{Path.GetFileName(seedDir.TrimEnd(Path.DirectorySeparatorChar))}");
            Directory.CreateDirectory(Path.GetDirectoryName(moved)!);
            Directory.Move(seedDir, moved);
        }
        Directory.CreateDirectory(seedDir);
        File.WriteAllText(keyPath, runKey + "\n");
        return moved;
    }

    private static string ComputeCodeVersion()
    {
        var assembly = typeof(ExperimentCache).Assembly;
        string version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? assembly.GetName().Version?.ToString() ?? "unknown";
        return $"{version} (module {assembly.ManifestModule.ModuleVersionId:N})";
    }
}
