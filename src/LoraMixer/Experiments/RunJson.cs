using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Errors;

namespace LoraMixer.Experiments;

/// <summary>Reading the JSON files of a run folder; field errors are <see cref="FormatException"/>s that name the key.</summary>
internal static class RunJson
{
    /// <summary>Parses <paramref name="path"/> as a JSON object, or throws <see cref="DataFormatException"/> naming the file.</summary>
    public static JsonObject ReadObject(string path, string what)
    {
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject
                ?? throw new DataFormatException($"malformed {what} {path}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new DataFormatException($"malformed {what} {path}: {e.Message}", e);
        }
    }

    public static string? String(JsonObject o, string key) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => throw new FormatException($"'{key}' must be a string"),
    };

    public static string RequiredString(JsonObject o, string key) =>
        String(o, key) is { Length: > 0 } s ? s : throw new FormatException($"'{key}' is missing or empty");

    /// <summary>A number; JSON null and strings such as "NaN" read as NaN; a missing key is null.</summary>
    public static double? Number(JsonObject o, string key) =>
        o.TryGetPropertyValue(key, out var node) ? Number(node, key) : null;

    public static double Number(JsonNode? node, string what) => node switch
    {
        null => double.NaN,
        JsonValue v when v.TryGetValue(out double d) => d,
        JsonValue v when v.TryGetValue(out string? s)
            && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => d,
        _ => throw new FormatException($"'{what}' must be a number, not {node.ToJsonString()}"),
    };

    public static double[] Numbers(JsonNode? node, string what) =>
        node is JsonArray a ? a.Select(x => Number(x, what)).ToArray() : throw new FormatException($"'{what}' must be an array of numbers");

    public static IReadOnlyList<string> Strings(JsonObject o, string key) => o[key] switch
    {
        null => [],
        JsonArray a => a.Select(x => x is JsonValue v && v.TryGetValue(out string? s) ? s : throw new FormatException($"'{key}' must be an array of strings")).ToArray(),
        _ => throw new FormatException($"'{key}' must be an array of strings"),
    };

    public static JsonObject? Object(JsonObject o, string key) => o[key] switch
    {
        null => null,
        JsonObject x => x,
        _ => throw new FormatException($"'{key}' must be an object"),
    };
}
