using System.Text.Json;

namespace LoraMixer.Evaluation;

/// <summary>Reads MedQA (US, 4 options) JSON lines <c>{"question", "options": {"A".."D"}, "answer_idx", ...}</c>.</summary>
public static class MedQaLoader
{
    /// <summary>The format named in error messages.</summary>
    public const string Format = "MedQA JSON lines {\"question\": str, \"options\": {\"A\": str, ...}, \"answer_idx\": \"A\"..}";

    /// <summary>Loads <paramref name="path"/>, skipping (and reporting) malformed lines.</summary>
    /// <exception cref="Errors.DataFormatException">The file is missing, empty or more than 1% of its lines are malformed.</exception>
    public static EvalDataset<MultipleChoiceExample> Load(string path)
    {
        int row = 0;
        return DataLines.Read(path, "MedQA", Format, line =>
        {
            row++;
            var obj = DataLines.ParseObject(line);
            string question = DataLines.String(obj, "question");
            var options = DataLines.Field(obj, "options", JsonValueKind.Object);
            var labels = new List<string>();
            var choices = new List<string>();
            foreach (var option in options.EnumerateObject().OrderBy(o => o.Name, StringComparer.Ordinal))
            {
                if (option.Value.ValueKind != JsonValueKind.String || option.Value.GetString()!.Length == 0)
                    throw new FormatException($"option \"{option.Name}\" is not a non-empty string");
                labels.Add(option.Name);
                choices.Add(option.Value.GetString()!);
            }
            if (labels.Count < 2) throw new FormatException("\"options\" has fewer than 2 options");
            string answer = DataLines.String(obj, "answer_idx");
            int gold = labels.IndexOf(answer);
            if (gold < 0) throw new FormatException($"\"answer_idx\" \"{answer}\" is not one of the options {string.Join(",", labels)}");
            string id = obj.TryGetProperty("id", out var idValue) && idValue.ValueKind == JsonValueKind.String ? idValue.GetString()! : $"row {row}";
            return new MultipleChoiceExample(id, question, labels, choices, gold);
        });
    }
}
