namespace LoraMixer.Evaluation;

/// <summary>Examples loaded from one benchmark file, with a "file line N: problem" note per malformed line that was skipped.</summary>
/// <typeparam name="T">The task's example type.</typeparam>
/// <param name="Path">The file read.</param>
/// <param name="Examples">The well-formed examples in file order.</param>
/// <param name="SkippedLines">One message per skipped line, naming the file and line number.</param>
public sealed record EvalDataset<T>(string Path, IReadOnlyList<T> Examples, IReadOnlyList<string> SkippedLines);
