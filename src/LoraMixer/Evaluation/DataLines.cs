using System.IO.Compression;
using System.Text;
using System.Text.Json;
using LoraMixer.Errors;

namespace LoraMixer.Evaluation;

/// <summary>
/// Line-by-line reading of benchmark files (plain or .gz) that skips and reports malformed lines, failing only
/// when more than 1% of the lines are bad (a wrong file rather than a few damaged rows).
/// </summary>
internal static class DataLines
{
    /// <summary>Most malformed lines tolerated, as a fraction of the non-blank lines.</summary>
    public const double MaxBadFraction = 0.01;

    public static EvalDataset<T> Read<T>(string path, string what, string format, Func<string, T> parse,
        Func<string, bool>? isHeader = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            throw new DataFormatException($"{what} data {path} is a folder; expected a file: {format}.");
        if (!File.Exists(path))
            throw new DataFormatException($"{what} data file {path} does not exist; expected {format} (pass --data-dir or set LORAMIXER_DATA to the folder holding it).");

        var examples = new List<T>();
        var skipped = new List<string>();
        int lineNumber = 0, nonBlank = 0;
        using (var reader = Open(path))
        {
            while (reader.ReadLine() is { } line)
            {
                lineNumber++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                if (lineNumber == 1 && isHeader is not null && isHeader(line)) continue;
                nonBlank++;
                try
                {
                    examples.Add(parse(line));
                }
                catch (Exception e) when (e is FormatException or JsonException or KeyNotFoundException or InvalidOperationException)
                {
                    skipped.Add($"{path} line {lineNumber}: {e.Message}; skipped");
                }
            }
        }
        if (skipped.Count > MaxBadFraction * nonBlank)
            throw new DataFormatException(
                $"{path}: {skipped.Count} of {nonBlank} lines are malformed (first: {skipped[0]}); expected {format}, fix or re-download the file.");
        if (examples.Count == 0)
            throw new DataFormatException($"{what} data {path} has no examples; expected {format}.");
        return new EvalDataset<T>(path, examples, skipped);
    }

    private static StreamReader Open(string path)
    {
        Stream stream = File.OpenRead(path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) stream = new GZipStream(stream, CompressionMode.Decompress);
        return new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
    }

    /// <summary>A JSON object line; a non-object is a <see cref="FormatException"/>.</summary>
    public static JsonElement ParseObject(string line)
    {
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(line);
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new FormatException($"not valid JSON ({e.Message.Split('.')[0]})");
        }
        if (root.ValueKind != JsonValueKind.Object) throw new FormatException("not a JSON object");
        return root;
    }

    /// <summary>A required non-empty string field.</summary>
    public static string String(JsonElement obj, string name)
    {
        if (!obj.TryGetProperty(name, out var value)) throw new FormatException($"missing \"{name}\"");
        if (value.ValueKind != JsonValueKind.String) throw new FormatException($"\"{name}\" is not a string");
        string s = value.GetString()!;
        if (s.Length == 0) throw new FormatException($"\"{name}\" is empty");
        return s;
    }

    /// <summary>A required field of any kind.</summary>
    public static JsonElement Field(JsonElement obj, string name, JsonValueKind kind)
    {
        if (!obj.TryGetProperty(name, out var value)) throw new FormatException($"missing \"{name}\"");
        if (value.ValueKind != kind) throw new FormatException($"\"{name}\" is not a JSON {kind.ToString().ToLowerInvariant()}");
        return value;
    }

    /// <summary>A 0/1 label column.</summary>
    public static int BinaryLabel(string text)
    {
        return text.Trim() switch
        {
            "0" => 0,
            "1" => 1,
            _ => throw new FormatException($"label \"{text}\" is not 0 or 1"),
        };
    }
}
