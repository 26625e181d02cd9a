using System.Text.Json;

namespace LoraMixer.Evaluation;

/// <summary>
/// Reads the AI2 ARC public JSON lines (ARC-Easy/ARC-Challenge *-Test.jsonl):
/// <c>{"id", "question": {"stem", "choices": [{"label", "text"}]}, "answerKey"}</c>; labels are "A".."E" or "1".."4".
/// </summary>
public static class ArcLoader
{
    /// <summary>The format named in error messages.</summary>
    public const string Format = "ARC JSON lines {\"id\", \"question\": {\"stem\": str, \"choices\": [{\"label\", \"text\"}]}, \"answerKey\"}";

    /// <summary>Loads <paramref name="path"/>, skipping (and reporting) malformed lines.</summary>
    /// <exception cref="Errors.DataFormatException">The file is missing, empty or more than 1% of its lines are malformed.</exception>
    public static EvalDataset<MultipleChoiceExample> Load(string path) => DataLines.Read(path, "ARC", Format, line =>
    {
        var obj = DataLines.ParseObject(line);
        string id = DataLines.String(obj, "id");
        var question = DataLines.Field(obj, "question", JsonValueKind.Object);
        string stem = DataLines.String(question, "stem");
        var labels = new List<string>();
        var choices = new List<string>();
        foreach (var choice in DataLines.Field(question, "choices", JsonValueKind.Array).EnumerateArray())
        {
            if (choice.ValueKind != JsonValueKind.Object) throw new FormatException("a choice is not a JSON object");
            labels.Add(DataLines.String(choice, "label"));
            choices.Add(DataLines.String(choice, "text"));
        }
        if (labels.Count < 2) throw new FormatException("\"question.choices\" has fewer than 2 choices");
        string key = DataLines.String(obj, "answerKey");
        int gold = labels.IndexOf(key);
        if (gold < 0) throw new FormatException($"\"answerKey\" \"{key}\" is not one of the choice labels {string.Join(",", labels)}");
        return new MultipleChoiceExample(id, stem, labels, choices, gold);
    });
}
