using System.Text.Json;
using LoraMixer.Errors;

namespace LoraMixer.Tokenization;

/// <summary>Typed access to a tokenizer.json's elements, failing with one-line messages that name the file.</summary>
internal sealed class HfJson(string path)
{
    private const string Fix = "re-download tokenizer.json from the model's repository or use its tokenizer.model";

    public string Path { get; } = path;

    public ModelFormatException Malformed(string what) => new($"{Path}: {what}; {Fix}.");

    public ModelFormatException Unsupported(string what) =>
        new($"{Path}: {what} is not supported (Llama-family BPE tokenizers only); use the model's tokenizer.model if it has one.");

    public static string? Type(JsonElement e) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;

    public string RequiredType(JsonElement e, string where) => Type(e) ?? throw Malformed($"{where} has no \"type\"");

    public static bool IsNull(JsonElement e) => e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;

    public static bool Bool(JsonElement e, string name, bool fallback) =>
        e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    public static string? OptionalString(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public string String(JsonElement e, string name, string where) =>
        OptionalString(e, name) ?? throw Malformed($"{where} lacks the string \"{name}\"");

    public int Int(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Malformed($"{where} lacks the integer \"{name}\"");

    public JsonElement Array(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array ? v : throw Malformed($"{where} lacks the array \"{name}\"");

    /// <summary>A Split/Replace pattern: {"String": "..."} or {"Regex": "..."}; a regex comes back compiled.</summary>
    public (string? Literal, CodePointRegex? Regex) Pattern(JsonElement e, string where)
    {
        if (!e.TryGetProperty("pattern", out var p) || p.ValueKind != JsonValueKind.Object)
            throw Malformed($"{where} lacks \"pattern\"");
        if (OptionalString(p, "String") is string literal) return (literal, null);
        if (OptionalString(p, "Regex") is string regex)
        {
            try { return (null, new CodePointRegex(regex)); }
            catch (ArgumentException ex) { throw Unsupported($"the {where} regex /{regex}/ ({ex.Message})"); }
        }
        throw Malformed($"{where} pattern is neither String nor Regex");
    }
}
