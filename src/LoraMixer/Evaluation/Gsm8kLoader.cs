namespace LoraMixer.Evaluation;

/// <summary>Reads GSM8K JSON lines <c>{"question": ..., "answer": "... #### 42"}</c> (openai/grade-school-math).</summary>
public static class Gsm8kLoader
{
    /// <summary>The format named in error messages.</summary>
    public const string Format = "GSM8K JSON lines {\"question\": str, \"answer\": str ending in \"#### <number>\"}";

    /// <summary>Loads <paramref name="path"/>, skipping (and reporting) malformed lines.</summary>
    /// <exception cref="Errors.DataFormatException">The file is missing, empty or more than 1% of its lines are malformed.</exception>
    public static EvalDataset<Gsm8kExample> Load(string path) => DataLines.Read(path, "GSM8K", Format, line =>
    {
        var obj = DataLines.ParseObject(line);
        string question = DataLines.String(obj, "question");
        string answer = DataLines.String(obj, "answer");
        int at = answer.LastIndexOf("####", StringComparison.Ordinal);
        if (at < 0) throw new FormatException("\"answer\" has no \"#### <number>\" final answer");
        string gold = Gsm8kAnswer.Normalize(answer);
        if (gold.Length == 0) throw new FormatException("\"answer\" has an empty final answer after ####");
        return new Gsm8kExample(question, answer, gold);
    });
}
