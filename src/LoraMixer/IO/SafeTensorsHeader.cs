using System.Text.Json;
using System.Text.Unicode;
using LoraMixer.Errors;

namespace LoraMixer.IO;

/// <summary>
/// Parses and validates the JSON header of a safetensors file. Everything in it is untrusted: any
/// problem becomes a <see cref="ModelFormatException"/>, and nothing that passes can make a later read
/// step outside the data section or allocate more than the file holds.
/// </summary>
internal static class SafeTensorsHeader
{
    /// <summary>Upper bound on the header, as in the reference implementation; real headers are kilobytes.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>No real tensor comes close; the bound keeps hostile shapes cheap to handle.</summary>
    public const int MaxRank = 64;

    private const string MetadataKey = "__metadata__";

    /// <summary>Parsed and checked header: entries in file order, and the metadata map.</summary>
    public sealed record Parsed(Dictionary<string, SafeTensorInfo> Tensors, Dictionary<string, string> Metadata);

    /// <summary>
    /// Validates <paramref name="json"/> against a data section of <paramref name="dataLength"/> bytes;
    /// <paramref name="path"/> only names the file in messages.
    /// </summary>
    public static Parsed Parse(string path, byte[] json, long dataLength)
    {
        // Checked up front because System.Text.Json only validates UTF-8 lazily, when a string is read.
        if (!Utf8.IsValid(json))
            throw Fail(path, "its JSON header is not valid UTF-8");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw Fail(path, $"its header is not valid JSON ({e.Message})", e);
        }

        using (document)
        {
            try
            {
                return ParseRoot(path, document.RootElement, dataLength);
            }
            catch (InvalidOperationException e)
            {
                // JsonElement throws this when a string cannot be transcoded (e.g. an escaped lone
                // surrogate); the kind checks below rule out every other cause.
                throw Fail(path, $"its header holds a string that cannot be decoded ({e.Message})", e);
            }
        }
    }

    private static Parsed ParseRoot(string path, JsonElement root, long dataLength)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw Fail(path, $"its header is a JSON {Kind(root)}, not an object mapping tensor names to entries");

        var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        Dictionary<string, string>? metadata = null;
        foreach (JsonProperty property in root.EnumerateObject())
        {
            string name = property.Name;
            if (name == MetadataKey)
            {
                if (metadata is not null)
                    throw Fail(path, $"its header has more than one \"{MetadataKey}\" entry");
                metadata = ParseMetadata(path, property.Value);
                continue;
            }
            if (tensors.ContainsKey(name))
                throw Fail(path, $"tensor '{Printable(name)}' is listed twice in the header");
            tensors.Add(name, ParseEntry(path, name, property.Value, dataLength));
        }

        CheckNoOverlap(path, tensors.Values);
        return new Parsed(tensors, metadata ?? new Dictionary<string, string>(StringComparer.Ordinal));
    }

    private static Dictionary<string, string> ParseMetadata(string path, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw Fail(path, $"\"{MetadataKey}\" is a JSON {Kind(element)}, not an object of strings");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (JsonProperty item in element.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw Fail(path, $"\"{MetadataKey}\" value '{Printable(item.Name)}' is a JSON {Kind(item.Value)}, not a string");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw Fail(path, $"\"{MetadataKey}\" key '{Printable(item.Name)}' is listed twice");
        }
        return metadata;
    }

    private static SafeTensorInfo ParseEntry(string path, string name, JsonElement entry, long dataLength)
    {
        if (entry.ValueKind != JsonValueKind.Object)
            throw Fail(path, $"tensor '{Printable(name)}' has a JSON {Kind(entry)} as its entry instead of an object with dtype, shape and data_offsets");

        JsonElement dtypeElement = Required(path, name, entry, "dtype");
        if (dtypeElement.ValueKind != JsonValueKind.String)
            throw Fail(path, $"tensor '{Printable(name)}' has a JSON {Kind(dtypeElement)} as dtype instead of a string");
        string dtypeText = dtypeElement.GetString()!;
        if (!SafeTensorsDTypes.TryParse(dtypeText, out SafeTensorsDType dtype))
            throw new ModelFormatException(
                $"Unsupported safetensors file {path}: tensor '{Printable(name)}' has dtype '{Printable(dtypeText)}'; LoraMixer reads only {SafeTensorsDTypes.SupportedList}. Convert the checkpoint to one of these (e.g. save it again in float32 or bfloat16).");

        long[] shape = ParseShape(path, name, Required(path, name, entry, "shape"));
        (long begin, long end) = ParseOffsets(path, name, Required(path, name, entry, "data_offsets"), dataLength);

        int elementSize = SafeTensorsDTypes.Size(dtype);
        long count = 1;
        bool empty = false;
        foreach (long dim in shape)
        {
            if (dim == 0)
            {
                empty = true;
                continue;
            }
            // Zero dimensions are skipped, yet the others must still multiply without overflow: libtorch
            // checks the full product when it allocates, and no sane file has such a shape anyway.
            if (count > long.MaxValue / elementSize / dim)
                throw Fail(path, $"tensor '{Printable(name)}' has shape {FormatShape(shape)}, whose element count overflows");
            count *= dim;
        }
        if (empty) count = 0;

        long expected = count * elementSize;
        if (expected != end - begin)
            throw Fail(path,
                $"tensor '{Printable(name)}' of dtype {dtypeText} and shape {FormatShape(shape)} needs {expected} bytes, but its data_offsets [{begin}, {end}] span {end - begin}");

        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    private static JsonElement Required(string path, string name, JsonElement entry, string key)
    {
        if (!entry.TryGetProperty(key, out JsonElement value))
            throw Fail(path, $"tensor '{Printable(name)}' has no \"{key}\" in its header entry");
        return value;
    }

    private static long[] ParseShape(string path, string name, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Array)
            throw Fail(path, $"tensor '{Printable(name)}' has a JSON {Kind(element)} as shape instead of an array of integers");
        int rank = element.GetArrayLength();
        if (rank > MaxRank)
            throw Fail(path, $"tensor '{Printable(name)}' has {rank} dimensions; at most {MaxRank} are supported");
        var shape = new long[rank];
        int i = 0;
        foreach (JsonElement item in element.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long dim))
                throw Fail(path, $"tensor '{Printable(name)}' has shape[{i}] = {Excerpt(item)}, which is not an integer");
            if (dim < 0)
                throw Fail(path, $"tensor '{Printable(name)}' has a negative dimension, shape[{i}] = {dim}");
            shape[i++] = dim;
        }
        return shape;
    }

    private static (long Begin, long End) ParseOffsets(string path, string name, JsonElement element, long dataLength)
    {
        if (element.ValueKind != JsonValueKind.Array || element.GetArrayLength() != 2)
            throw Fail(path, $"tensor '{Printable(name)}' has data_offsets {Excerpt(element)} instead of an array [begin, end] of two integers");
        var values = new long[2];
        int i = 0;
        foreach (JsonElement item in element.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long value) || value < 0)
                throw Fail(path, $"tensor '{Printable(name)}' has data_offsets[{i}] = {Excerpt(item)}, which is not a non-negative integer");
            values[i++] = value;
        }
        long begin = values[0], end = values[1];
        if (end < begin)
            throw Fail(path, $"tensor '{Printable(name)}' has data_offsets [{begin}, {end}] that end before they begin");
        if (end > dataLength)
            throw Fail(path, $"tensor '{Printable(name)}' has data_offsets [{begin}, {end}] outside the data section, which is {dataLength} bytes (the file may be truncated)");
        return (begin, end);
    }

    private static void CheckNoOverlap(string path, IEnumerable<SafeTensorInfo> tensors)
    {
        // Gaps are tolerated (some writers align data), but two tensors sharing bytes means a broken writer.
        SafeTensorInfo? previous = null;
        foreach (SafeTensorInfo info in tensors.Where(t => t.End > t.Begin).OrderBy(t => t.Begin))
        {
            if (previous is not null && info.Begin < previous.End)
                throw Fail(path,
                    $"tensors '{Printable(previous.Name)}' [{previous.Begin}, {previous.End}] and '{Printable(info.Name)}' [{info.Begin}, {info.End}] overlap in the data section");
            previous = info;
        }
    }

    /// <summary>A format error about <paramref name="path"/>, with the advice that fits any corrupt file.</summary>
    public static ModelFormatException Fail(string path, string problem, Exception? inner = null)
    {
        string message = $"Invalid safetensors file {path}: {problem}. The file is corrupt, truncated or not a safetensors file; download or export it again.";
        return inner is null ? new ModelFormatException(message) : new ModelFormatException(message, inner);
    }

    /// <summary>Shape as the Python library prints it, e.g. [2, 3].</summary>
    public static string FormatShape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    private static string Kind(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "value",
    };

    /// <summary>The raw JSON of a value, shortened so a hostile header cannot flood the message.</summary>
    private static string Excerpt(JsonElement element) => Printable(element.GetRawText());

    internal static string Printable(string text)
    {
        const int limit = 200;
        string shortened = text.Length <= limit ? text : text[..limit] + "...";
        return new string(shortened.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }
}
