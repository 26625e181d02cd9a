using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.IO;

namespace LoraMixer.Experiments;

/// <summary>
/// <c>runs/&lt;name&gt;/manifest.json</c>: software versions, the SHA-256 of the recipe, of the base model's files
/// and of every data file, and each finished step with its duration. Rewritten atomically after every step.
/// </summary>
public sealed class ExperimentManifest
{
    /// <summary>File name inside the run folder.</summary>
    public const string FileName = "manifest.json";

    private readonly string _path;
    private readonly JsonObject _json;

    private ExperimentManifest(string path, JsonObject json)
    {
        _path = path;
        _json = json;
    }

    /// <summary>Opens the run's manifest (keeping its finished steps) or starts one, and records the current versions and hashes.</summary>
    public static ExperimentManifest Open(string runDir, ExperimentRecipe recipe, string baseModelDir, IReadOnlyList<string> dataFiles)
    {
        string path = Path.Combine(runDir, FileName);
        JsonObject json = File.Exists(path) && JsonNode.Parse(File.ReadAllText(path)) is JsonObject existing ? existing : new JsonObject
        {
            ["name"] = recipe.Name,
            ["created"] = Now(),
            ["steps"] = new JsonArray(),
        };
        json["recipe_sha256"] = recipe.Hash();
        json["versions"] = new JsonObject
        {
            ["loramixer"] = typeof(ExperimentManifest).Assembly.GetName().Version?.ToString(),
            ["code"] = ExperimentCache.CodeVersion,
            ["torchsharp"] = typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(),
            ["dotnet"] = Environment.Version.ToString(),
            ["os"] = RuntimeInformation.OSDescription,
            ["threads"] = TorchSharp.torch.get_num_threads(),
        };
        json["base_model"] = new JsonObject
        {
            ["path"] = Path.GetFullPath(baseModelDir),
            ["sha256"] = HashFiles(Directory.GetFiles(baseModelDir).Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal))),
        };
        var data = new JsonObject();
        foreach (var file in dataFiles) data[Path.GetFullPath(file)] = HashFiles(new[] { file });
        json["data"] = data;
        string baseSha = (string)json["base_model"]!["sha256"]!;
        json["cache_key"] = ExperimentCache.RunKey(recipe.Hash(), baseSha,
            data.Select(d => KeyValuePair.Create(d.Key, d.Value?.GetValue<string>() ?? "")).ToArray());
        var manifest = new ExperimentManifest(path, json);
        manifest.Save();
        return manifest;
    }

    /// <summary>The run's cache key (<see cref="ExperimentCache.RunKey"/>): code version, recipe, base model and data.</summary>
    public string CacheKey => (string)_json["cache_key"]!;

    /// <summary>Ids of the finished steps, e.g. <c>seed-0/stage1</c>.</summary>
    public IReadOnlyList<string> FinishedSteps =>
        (_json["steps"] as JsonArray ?? new JsonArray()).Select(s => (string?)s?["id"]).OfType<string>().ToArray();

    /// <summary>Records a finished step and saves.</summary>
    public void AddStep(string id, double seconds)
    {
        if (_json["steps"] is not JsonArray steps) _json["steps"] = steps = new JsonArray();
        steps.Add(new JsonObject { ["id"] = id, ["seconds"] = Math.Round(seconds, 1), ["finished"] = Now() });
        _json["updated"] = Now();
        Save();
    }

    private void Save()
    {
        var bytes = Encoding.UTF8.GetBytes(_json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.Write(_path, s => s.Write(bytes));
    }

    /// <summary>SHA-256 over the files (in name order) and their names.</summary>
    private static string HashFiles(IEnumerable<string> files)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var file in files.OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes(Path.GetFileName(file)));
            using var stream = File.OpenRead(file);
            var buffer = new byte[1 << 20];
            int read;
            while ((read = stream.Read(buffer)) > 0) sha.AppendData(buffer, 0, read);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    private static string Now() => DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
}
