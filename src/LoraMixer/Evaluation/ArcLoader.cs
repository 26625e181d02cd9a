using System.Text.Json;

namespace LoraMixer.Evaluation;

/// <summary>
/// Reads ARC (ARC-Easy/ARC-Challenge) JSON lines in either schema, line by line: AI2's original release
/// <c>{"id", "question": {"stem", "choices": [{"label", "text"}]}, "answerKey"}</c>, or the Hugging Face
/// <c>allenai/ai2_arc</c> rows <c>{"id", "question": str, "choices": {"text": [...], "label": [...]}, "answerKey"}</c>
/// (what lm-eval reads). Labels are "A".."E" or "1".."5".
/// </summary>
public static class ArcLoader
{
    /// <summary>The format named in error messages.</summary>
    public const string Format = "ARC JSON lines, AI2's {\"id\", \"question\": {\"stem\", \"choices\": [{\"label\", \"text\"}]}, \"answerKey\"} or Hugging Face's {\"id\", \"question\": str, \"choices\": {\"text\": [...], \"label\": [...]}, \"answerKey\"}";

    /// <summary>Loads <paramref name="path"/>, skipping (and reporting) malformed lines.</summary>
    /// <exception cref="Errors.DataFormatException">The file is missing, empty or more than 1% of its lines are malformed.</exception>
    public static EvalDataset<MultipleChoiceExample> Load(string path) => DataLines.Read(path, "ARC", Format, Parse);

    /// <summary>One line of either schema.</summary>
    /// <exception cref="FormatException">The line is neither.</exception>
    public static MultipleChoiceExample Parse(string line)
    {
        var obj = DataLines.ParseObject(line);
        string id = DataLines.String(obj, "id");
        if (!obj.TryGetProperty("question", out var question)) throw new FormatException("missing \"question\"");
        string stem;
        var labels = new List<string>();
        var choices = new List<string>();
        if (question.ValueKind == JsonValueKind.Object)
        {
            // AI2's original release.
            stem = DataLines.String(question, "stem");
            foreach (var choice in DataLines.Field(question, "choices", JsonValueKind.Array).EnumerateArray())
            {
                if (choice.ValueKind != JsonValueKind.Object) throw new FormatException("a choice is not a JSON object");
                labels.Add(DataLines.String(choice, "label"));
                choices.Add(DataLines.String(choice, "text"));
            }
        }
        else if (question.ValueKind == JsonValueKind.String)
        {
            // Hugging Face datasets: parallel text and label lists.
            stem = DataLines.String(obj, "question");
            var table = DataLines.Field(obj, "choices", JsonValueKind.Object);
            var texts = DataLines.Field(table, "text", JsonValueKind.Array).EnumerateArray().ToArray();
            var names = DataLines.Field(table, "label", JsonValueKind.Array).EnumerateArray().ToArray();
            if (texts.Length != names.Length) throw new FormatException($"\"choices\" has {texts.Length} texts but {names.Length} labels");
            for (int i = 0; i < texts.Length; i++)
            {
                if (texts[i].ValueKind != JsonValueKind.String || names[i].ValueKind != JsonValueKind.String)
                    throw new FormatException("\"choices.text\" and \"choices.label\" must hold strings");
                labels.Add(names[i].GetString()!);
                choices.Add(texts[i].GetString()!);
            }
        }
        else throw new FormatException("\"question\" is neither an object (AI2) nor a string (Hugging Face)");
        if (labels.Count < 2) throw new FormatException("the question has fewer than 2 choices");
        string key = DataLines.String(obj, "answerKey");
        int gold = labels.IndexOf(key);
        if (gold < 0) throw new FormatException($"\"answerKey\" \"{key}\" is not one of the choice labels {string.Join(",", labels)}");
        return new MultipleChoiceExample(id, stem, labels, choices, gold);
    }
}
