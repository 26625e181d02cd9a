namespace LoraMixer.Evaluation;

/// <summary>Reads HumanEval.jsonl.gz (or an uncompressed .jsonl) from openai/human-eval.</summary>
public static class HumanEvalLoader
{
    /// <summary>The format named in error messages.</summary>
    public const string Format = "HumanEval JSON lines (gzip allowed) {\"task_id\", \"prompt\", \"canonical_solution\", \"test\", \"entry_point\"}";

    /// <summary>Loads <paramref name="path"/>, skipping (and reporting) malformed lines.</summary>
    /// <exception cref="Errors.DataFormatException">The file is missing, empty or more than 1% of its lines are malformed.</exception>
    public static EvalDataset<HumanEvalProblem> Load(string path) => DataLines.Read(path, "HumanEval", Format, line =>
    {
        var obj = DataLines.ParseObject(line);
        return new HumanEvalProblem(
            DataLines.String(obj, "task_id"),
            DataLines.String(obj, "prompt"),
            DataLines.String(obj, "canonical_solution"),
            DataLines.String(obj, "test"),
            DataLines.String(obj, "entry_point"));
    });
}
