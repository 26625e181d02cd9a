using System.Text.Json;

namespace LoraMixer.Evaluation;

/// <summary>
/// Reads a user's task file for <c>eval --tasks jsonl:PATH</c>: JSON lines <c>{"prompt": str, "response": str}</c>
/// (generation) or <c>{"prompt": str, "choices": [str, ...], "answer": index or choice text}</c> (multiple choice);
/// the first well-formed line sets the kind, and a line of the other kind is malformed. Malformed lines are
/// reported with file and line and skipped while they stay under 1% of the lines; above that the file is refused.
/// </summary>
public static class CustomTaskLoader
{
    /// <summary>The format named in error messages.</summary>
    public const string Format = "JSON lines {\"prompt\": str, \"response\": str} or {\"prompt\": str, \"choices\": [str, ...], \"answer\": index or choice text}";

    /// <summary>Loads <paramref name="path"/>.</summary>
    /// <exception cref="Errors.DataFormatException">The file is missing, empty, or more than 1% of its lines are malformed.</exception>
    public static EvalDataset<CustomExample> Load(string path)
    {
        bool? choiceKind = null;
        return DataLines.Read(path, "JSONL task", Format, line =>
        {
            var obj = DataLines.ParseObject(line);
            string prompt = DataLines.String(obj, "prompt");
            bool hasResponse = obj.TryGetProperty("response", out _), hasChoices = obj.TryGetProperty("choices", out _);
            if (hasResponse == hasChoices)
                throw new FormatException(hasResponse ? "has both \"response\" and \"choices\"; give one" : "has neither \"response\" nor \"choices\"");
            if (choiceKind is { } kind && kind != hasChoices)
                throw new FormatException(kind ? "has \"response\" but the file's first line set multiple choice (\"choices\"); one kind per file"
                    : "has \"choices\" but the file's first line set generation (\"response\"); one kind per file");
            CustomExample example;
            if (hasResponse)
            {
                if (obj.GetProperty("response").ValueKind != JsonValueKind.String) throw new FormatException("\"response\" is not a string");
                example = new CustomExample(prompt, obj.GetProperty("response").GetString()!, null, -1);
            }
            else
            {
                var choices = DataLines.Field(obj, "choices", JsonValueKind.Array).EnumerateArray()
                    .Select(c => c.ValueKind == JsonValueKind.String && c.GetString()!.Length > 0 ? c.GetString()! : throw new FormatException("\"choices\" must hold non-empty strings"))
                    .ToArray();
                if (choices.Length < 2) throw new FormatException("\"choices\" has fewer than 2 choices");
                if (!obj.TryGetProperty("answer", out var answer)) throw new FormatException("missing \"answer\" (the index of the correct choice or its text)");
                int gold = answer.ValueKind switch
                {
                    JsonValueKind.Number when answer.TryGetInt32(out int i) && i >= 0 && i < choices.Length => i,
                    JsonValueKind.Number => throw new FormatException($"\"answer\" {answer.GetRawText()} is not an index 0..{choices.Length - 1}"),
                    JsonValueKind.String when Array.IndexOf(choices, answer.GetString()) is var at && at >= 0 => at,
                    JsonValueKind.String => throw new FormatException($"\"answer\" \"{answer.GetString()}\" is not one of the choices"),
                    _ => throw new FormatException("\"answer\" must be a choice index or a choice's text"),
                };
                example = new CustomExample(prompt, null, choices, gold);
            }
            choiceKind ??= hasChoices;
            return example;
        });
    }
}
