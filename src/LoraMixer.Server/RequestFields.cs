using System.Text.Json;
using LoraMixer.Serving;

namespace LoraMixer.Server;

/// <summary>
/// Typed access to the fields of a JSON request body, refusing wrong types and out-of-range values with OpenAI's
/// 400 error naming the field. A missing field and JSON null both read as absent.
/// </summary>
internal sealed class RequestFields
{
    private readonly JsonElement _root;
    private readonly string _prefix;

    public RequestFields(JsonElement root, string prefix = "")
    {
        _root = root;
        _prefix = prefix;
    }

    /// <summary>Parses a whole body, which must be a JSON object.</summary>
    public static async Task<(JsonDocument Document, RequestFields Fields)> ReadAsync(Stream body, CancellationToken cancellationToken)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(body, new JsonDocumentOptions { MaxDepth = 32 }, cancellationToken);
        }
        catch (JsonException e)
        {
            throw ServingRequestException.Invalid($"We could not parse the JSON body of your request ({e.Message}); send a JSON object.");
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw ServingRequestException.Invalid("The body of your request must be a JSON object.");
        }
        return (document, new RequestFields(document.RootElement));
    }

    public string Name(string field) => _prefix + field;

    /// <summary>The field's value, or null when it is missing or null.</summary>
    public JsonElement? Get(string field) =>
        _root.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    public ServingRequestException WrongType(string field, string expected, JsonElement got) =>
        ServingRequestException.Invalid($"Invalid type for '{Name(field)}': expected {expected}, but got {Describe(got)} instead.", Name(field), "invalid_type");

    public static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };

    public string RequiredString(string field)
    {
        var value = Get(field) ?? throw ServingRequestException.Invalid($"Missing required parameter: '{Name(field)}'.", Name(field), "missing_required_parameter");
        return value.ValueKind == JsonValueKind.String ? value.GetString()! : throw WrongType(field, "a string", value);
    }

    public string? String(string field)
    {
        if (Get(field) is not { } value) return null;
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw WrongType(field, "a string", value);
    }

    public bool? Bool(string field)
    {
        if (Get(field) is not { } value) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(field, "a boolean", value),
        };
    }

    public double? Number(string field, double min, double max)
    {
        if (Get(field) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Number) throw WrongType(field, "a decimal", value);
        double d = value.GetDouble();
        if (!(d >= min && d <= max))
            throw ServingRequestException.Invalid($"Invalid value for '{Name(field)}': {d} is outside [{min}, {max}].", Name(field), "invalid_value");
        return d;
    }

    public long? Integer(string field, long min, long max)
    {
        if (Get(field) is not { } value) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out long n))
        {
            // 2.0 is an integer too.
            if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < 9e15) n = (long)d;
            else throw WrongType(field, "an integer", value);
        }
        if (n < min || n > max)
            throw ServingRequestException.Invalid($"Invalid value for '{Name(field)}': {n} is outside [{min}, {max}].", Name(field), "invalid_value");
        return n;
    }

    public RequestFields? Object(string field)
    {
        if (Get(field) is not { } value) return null;
        return value.ValueKind == JsonValueKind.Object ? new RequestFields(value, Name(field) + ".") : throw WrongType(field, "an object", value);
    }

    /// <summary>A string or a list of strings (e.g. <c>stop</c>).</summary>
    public IReadOnlyList<string>? Strings(string field, int maxCount)
    {
        if (Get(field) is not { } value) return null;
        List<string> list;
        if (value.ValueKind == JsonValueKind.String) list = [value.GetString()!];
        else if (value.ValueKind == JsonValueKind.Array)
            list = value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw WrongType(field, "a string or an array of strings", value)).ToList();
        else throw WrongType(field, "a string or an array of strings", value);
        if (list.Count > maxCount)
            throw ServingRequestException.Invalid($"Invalid value for '{Name(field)}': at most {maxCount} entries, got {list.Count}.", Name(field), "invalid_value");
        if (list.Any(s => s.Length == 0))
            throw ServingRequestException.Invalid($"Invalid value for '{Name(field)}': empty strings are not allowed.", Name(field), "invalid_value");
        return list;
    }

    /// <summary>Fields other than <paramref name="known"/> are refused (used for the lora_mixer object, where a typo would pass silently).</summary>
    public void OnlyKnown(params string[] known)
    {
        foreach (var p in _root.EnumerateObject())
            if (!known.Contains(p.Name))
                throw ServingRequestException.Invalid($"Unrecognized request argument '{Name(p.Name)}'; known: {string.Join(", ", known)}.", Name(p.Name), "unknown_parameter");
    }

    /// <summary>Refuses a field that is present with a value other than its neutral one.</summary>
    public void Unsupported(string field, Func<JsonElement, bool> isNeutral, string what)
    {
        if (Get(field) is { } value && !isNeutral(value))
            throw ServingRequestException.Invalid($"'{Name(field)}' is not supported by this server: {what}.", Name(field), "unsupported_parameter");
    }
}
