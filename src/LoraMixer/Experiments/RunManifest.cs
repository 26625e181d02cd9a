using System.Text.Json.Nodes;

namespace LoraMixer.Experiments;

/// <summary>What the report shows of a run's <c>manifest.json</c>: when it ran, the software versions and the base model.</summary>
/// <param name="Created">When the run was created, as written.</param>
/// <param name="Versions">Component → version (loramixer, torchsharp, dotnet, os).</param>
/// <param name="BaseModelPath">The base model folder, when recorded.</param>
/// <param name="BaseModelSha256">The base model's hash, when recorded.</param>
public sealed record RunManifest(string? Created, IReadOnlyDictionary<string, string> Versions, string? BaseModelPath, string? BaseModelSha256)
{
    /// <summary>Reads the fields the report uses; throws <see cref="FormatException"/> naming a bad key.</summary>
    public static RunManifest FromJson(JsonObject json)
    {
        var versions = new Dictionary<string, string>();
        foreach (var (key, value) in RunJson.Object(json, "versions") ?? new JsonObject())
            versions[key] = value is JsonValue v && v.TryGetValue(out string? s) ? s : value?.ToJsonString() ?? "";
        var model = RunJson.Object(json, "base_model");
        return new RunManifest(json["created"]?.ToString(), versions,
            model is null ? null : RunJson.String(model, "path"), model is null ? null : RunJson.String(model, "sha256"));
    }
}
