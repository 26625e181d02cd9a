using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using LoraMixer.Errors;

namespace LoraMixer.IO;

/// <summary>
/// Reads a Hugging Face <c>config.json</c> into a typed shape (System.Text.Json, <c>[JsonPropertyName]</c>)
/// with one-line errors naming the file and the field or position.
/// </summary>
public static class HfConfigFile
{
    private static readonly JsonSerializerOptions Options = new()
    {
        Converters = { new WholeNumberConverter() },
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>The path of <c>config.json</c> in a model folder (or the file itself); an error when absent.</summary>
    public static string Locate(string path)
    {
        string file = Directory.Exists(path) ? Path.Combine(path, "config.json") : path;
        if (!File.Exists(file))
            throw new ModelFormatException(Directory.Exists(path)
                ? $"model folder {path} has no config.json; point --model at a Hugging Face model folder"
                : $"{path} does not exist; point --model at a Hugging Face model folder");
        return file;
    }

    /// <summary>The parsed <c>config.json</c> of a model folder (or the file itself), with its path.</summary>
    public static (JsonObject Json, string File) Read(string path)
    {
        string file = Locate(path);
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(file), documentOptions: new JsonDocumentOptions
            {
                CommentHandling = JsonCommentHandling.Skip,
                AllowTrailingCommas = true,
            });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{file}: invalid JSON at {Position(e)}; fix the file (a missing comma, quote or bracket)", e);
        }
        return (node as JsonObject ?? throw new ModelFormatException($"{file}: expected a JSON object {{...}}, got {Kind(node)}"), file);
    }

    /// <summary>The first entry of <c>architectures</c> and <c>model_type</c>, each when present and a string.</summary>
    public static (string? Architecture, string? ModelType) Identify(JsonObject json) =>
        (json["architectures"] is JsonArray { Count: > 0 } list && list[0] is JsonValue a && a.TryGetValue(out string? arch) ? arch : null,
         json["model_type"] is JsonValue t && t.TryGetValue(out string? type) ? type : null);

    /// <summary>
    /// Binds <paramref name="json"/> to <typeparamref name="T"/> (fields by <c>[JsonPropertyName]</c>; unknown
    /// fields ignored); a field of the wrong type is an error naming <paramref name="file"/>, the field, what
    /// it holds and what it must be.
    /// </summary>
    public static T Deserialize<T>(JsonObject json, string file) where T : class
    {
        try
        {
            return json.Deserialize<T>(Options) ?? throw new ModelFormatException($"{file}: expected a JSON object");
        }
        catch (JsonException e)
        {
            string path = e.Path is { Length: > 1 } p ? p.TrimStart('$', '.') : "?";
            string expected = Expected(typeof(T), path);
            string got = Find(json, path)?.ToJsonString() ?? "null";
            if (got.Length > 60) got = got[..57] + "...";
            throw new ModelFormatException($"{file}: field '{path}' must be {expected}, got {got}", e);
        }
    }

    private static string Position(JsonException e) =>
        e.LineNumber is long line ? $"line {line + 1}, position {(e.BytePositionInLine ?? 0) + 1}" : "an unknown position";

    private static string Kind(JsonNode? node) => node switch
    {
        null => "null",
        JsonArray => "a list",
        _ => node.GetValueKind().ToString().ToLowerInvariant(),
    };

    // Follows a path such as 'rope_scaling.factor' or 'eos_token_id[1]' (indices are dropped).
    private static JsonNode? Find(JsonObject json, string path)
    {
        JsonNode? node = json;
        foreach (string part in path.Split('.'))
        {
            string key = part.Split('[')[0];
            node = node is JsonObject o ? o[key] : null;
            if (node is null) return null;
        }
        return node;
    }

    private static string Expected(Type type, string path)
    {
        foreach (string part in path.Split('.'))
        {
            string key = part.Split('[')[0];
            var property = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .FirstOrDefault(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name == key);
            if (property is null) return "of another type";
            type = property.PropertyType;
        }
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(int) || type == typeof(long)) return "a non-negative integer";
        if (type == typeof(double)) return "a number";
        if (type == typeof(bool)) return "true or false";
        if (type == typeof(string)) return "a string";
        if (type == typeof(JsonElement)) return "an integer or a string";
        var element = type.IsArray ? type.GetElementType() : type.GetGenericArguments().FirstOrDefault();
        if (element == typeof(int)) return "an integer or a list of integers";
        if (element == typeof(string)) return "a list of strings";
        return "an object or null";
    }
}
