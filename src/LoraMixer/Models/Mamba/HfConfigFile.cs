using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Errors;

namespace LoraMixer.Models.Mamba;

/// <summary>Reads a Hugging Face <c>config.json</c> and its typed fields with one-line errors naming the file and key.</summary>
internal sealed class HfConfigFile(JsonObject json, string file)
{
    public JsonObject Json => json;

    public string File => file;

    /// <summary>The parsed config of a model folder (or the file itself).</summary>
    public static HfConfigFile Read(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!System.IO.File.Exists(file))
            throw new ModelFormatException(Directory.Exists(path)
                ? $"model folder {path} has no config.json; point --model at a Hugging Face model folder"
                : $"{path} does not exist; point --model at a Hugging Face model folder");
        try
        {
            var json = JsonNode.Parse(System.IO.File.ReadAllText(file)) as JsonObject
                ?? throw new ModelFormatException($"{file}: expected a JSON object");
            return new HfConfigFile(json, file);
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{file}: invalid JSON ({e.Message})", e);
        }
    }

    /// <summary>The first entry of <c>architectures</c>, when present.</summary>
    public string? Architecture() =>
        json["architectures"] is JsonArray { Count: > 0 } list && list[0] is JsonValue v && v.TryGetValue(out string? name) ? name : null;

    public int RequiredInt(string key) =>
        OptionalInt(key) ?? throw new ModelFormatException($"{file}: required field '{key}' is missing");

    public int? OptionalInt(string key)
    {
        var node = json[key];
        if (node is null) return null;
        if (AsNumber(node) is double x && x == Math.Floor(x) && x is >= 0 and <= int.MaxValue) return (int)x;
        throw new ModelFormatException($"{file}: field '{key}' must be a non-negative integer, got {node.ToJsonString()}");
    }

    public double? OptionalDouble(string key)
    {
        var node = json[key];
        if (node is null) return null;
        if (AsNumber(node) is double d && double.IsFinite(d)) return d;
        throw new ModelFormatException($"{file}: field '{key}' must be a number, got {node.ToJsonString()}");
    }

    public bool? OptionalBool(string key)
    {
        var node = json[key];
        if (node is null) return null;
        if (node is JsonValue v && v.TryGetValue(out bool b)) return b;
        throw new ModelFormatException($"{file}: field '{key}' must be true or false, got {node.ToJsonString()}");
    }

    public string? OptionalString(string key)
    {
        var node = json[key];
        if (node is null) return null;
        if (node is JsonValue v && v.TryGetValue(out string? s)) return s;
        throw new ModelFormatException($"{file}: field '{key}' must be a string, got {node.ToJsonString()}");
    }

    public bool IsString(string key) => json[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String;

    // A JsonValue may wrap a JsonElement (parsed) or a CLR number (built in code); both serialise to a JSON number.
    private static double? AsNumber(JsonNode node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number
            ? double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture)
            : null;
}
