using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using LoraMixer.Errors;
using LoraMixer.IO;

namespace LoraMixer.Data;

/// <summary>
/// Reads and writes training data as JSON Lines: one object per line, either
/// <c>{"prompt": ..., "response": ..., "task": ...}</c> (loss on the response only) or <c>{"text": ..., "task": ...}</c>.
/// Blank lines are skipped; other fields are ignored.
/// </summary>
public static class JsonlDataset
{
    private const string Expected =
        "a JSON Lines file with one {\"prompt\": ..., \"response\": ..., \"task\": ...} or {\"text\": ..., \"task\": ...} object per line";

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Loads every record of <paramref name="path"/>.</summary>
    /// <param name="path">The .jsonl file.</param>
    /// <param name="requireTask">Whether every record must carry a "task" (hard-routed expert training).</param>
    /// <param name="knownTasks">When given, a "task" outside this set is an error.</param>
    /// <exception cref="DataFormatException">The file is missing, empty or has a malformed line.</exception>
    public static IReadOnlyList<TrainingRecord> Load(string path, bool requireTask = false, IReadOnlyCollection<string>? knownTasks = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            throw new DataFormatException($"Training data {path} is a folder; pass {Expected}.");
        if (!File.Exists(path))
            throw new DataFormatException($"Training data {path} does not exist; pass {Expected}.");
        var known = knownTasks is null ? null : new HashSet<string>(knownTasks, StringComparer.Ordinal);

        var records = new List<TrainingRecord>();
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        int lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            records.Add(ParseLine(line, path, lineNumber, requireTask, known));
        }
        if (records.Count == 0)
            throw new DataFormatException($"Training data {path} has no records; write {Expected}.");
        return records;
    }

    /// <summary>Writes <paramref name="records"/> to <paramref name="path"/> atomically, one JSON object per line.</summary>
    /// <exception cref="ArgumentException">A record has neither a response nor a text.</exception>
    public static void Write(string path, IEnumerable<TrainingRecord> records)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(records);
        var list = records.ToList();
        foreach (var r in list)
        {
            if ((r.Response is null) == (r.Text is null))
                throw new ArgumentException($"Record {r.Location} must have exactly one of Response and Text.", nameof(records));
        }
        AtomicFile.Write(path, stream =>
        {
            var newline = new[] { (byte)'\n' };
            foreach (var r in list)
            {
                using (var json = new Utf8JsonWriter(stream, WriterOptions))
                {
                    json.WriteStartObject();
                    if (r.Prompt is not null) json.WriteString("prompt", r.Prompt);
                    if (r.Response is not null) json.WriteString("response", r.Response);
                    if (r.Text is not null) json.WriteString("text", r.Text);
                    if (r.Task is not null) json.WriteString("task", r.Task);
                    json.WriteEndObject();
                }
                stream.Write(newline);
            }
        });
    }

    private static TrainingRecord ParseLine(string line, string path, int lineNumber, bool requireTask, HashSet<string>? known)
    {
        string where = $"{path}:{lineNumber}";
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new DataFormatException($"{where}: not valid JSON ({FirstSentence(e.Message)}); each line must be one JSON object.", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new DataFormatException($"{where}: expected a JSON object, found {Describe(root.ValueKind)}; write one {{\"prompt\", \"response\", \"task\"}} or {{\"text\", \"task\"}} object per line.");
            string? prompt = OptionalString(root, "prompt", where);
            string? response = OptionalString(root, "response", where);
            string? text = OptionalString(root, "text", where);
            string? task = OptionalString(root, "task", where);

            if (response is null && text is null)
                throw new DataFormatException($"{where}: needs \"response\" (with optional \"prompt\") or \"text\".");
            if (response is not null && text is not null)
                throw new DataFormatException($"{where}: has both \"response\" and \"text\"; keep one (\"prompt\"+\"response\" trains on the response only, \"text\" on all of it).");
            if (text is not null && prompt is not null)
                throw new DataFormatException($"{where}: \"prompt\" goes with \"response\", not \"text\"; rename \"text\" to \"response\" or drop \"prompt\".");
            if (text is { Length: 0 })
                throw new DataFormatException($"{where}: \"text\" is empty; remove the line or give it text.");
            if (task is null && requireTask)
                throw new DataFormatException($"{where}: no \"task\"; every record needs one to train experts (add \"task\": \"<name>\").");
            if (task is not null && known is not null && !known.Contains(task))
                throw new DataFormatException($"{where}: unknown task \"{task}\"; known tasks: {string.Join(", ", known.Order(StringComparer.Ordinal))}.");
            return new TrainingRecord(prompt, response, text, task, path, lineNumber);
        }
    }

    // JSON null counts as absent, so exporters that write every column still load.
    private static string? OptionalString(JsonElement root, string name, string where)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String)
            throw new DataFormatException($"{where}: \"{name}\" must be a string, found {Describe(value.ValueKind)}; quote the value.");
        return value.GetString();
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.String => "a string",
        _ => "null",
    };

    private static string FirstSentence(string message)
    {
        string oneLine = message.ReplaceLineEndings(" ");
        int dot = oneLine.IndexOf(". ", StringComparison.Ordinal);
        return (dot > 0 ? oneLine[..dot] : oneLine).TrimEnd('.');
    }
}
