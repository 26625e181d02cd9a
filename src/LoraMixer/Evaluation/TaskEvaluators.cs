using LoraMixer.Errors;

namespace LoraMixer.Evaluation;

/// <summary>
/// Builds a task's evaluator from the data folder: the scored split (<see cref="EvalDataLocator.EvalFiles"/>), the
/// exemplar split (the train split, or what <c>--fewshot-split</c> names) and the record of both
/// (<see cref="RecordedEvaluator"/>: data hashes, exemplar split, notes).
/// </summary>
public static class TaskEvaluators
{
    /// <summary>
    /// Loads <paramref name="task"/>'s files through <paramref name="locator"/>; each skipped malformed line is
    /// passed to <paramref name="onSkippedLine"/> (one message naming file and line).
    /// </summary>
    /// <param name="task">The benchmark.</param>
    /// <param name="locator">The data folder.</param>
    /// <param name="onSkippedLine">Hears each skipped malformed line.</param>
    /// <param name="fewShotSplit">
    /// Where exemplars come from: null for the train split (none: 0-shot with a note), a split name
    /// (<see cref="EvalDataLocator.SplitNames"/>) or a file in the task's format. Naming the scored split is allowed
    /// and recorded; each example is then left out of its own exemplars.
    /// </param>
    /// <exception cref="DataFormatException">The evaluation data (or the named exemplar split) is missing or unreadable.</exception>
    public static RecordedEvaluator Create(EvalTask task, EvalDataLocator locator, Action<string>? onSkippedLine = null, string? fewShotSplit = null)
    {
        ArgumentNullException.ThrowIfNull(locator);
        var (evalFiles, notes) = locator.EvalFiles(task);
        int skipped = 0;
        IReadOnlyList<T> Load<T>(Func<string, EvalDataset<T>> loader, IEnumerable<string> paths)
        {
            var all = new List<T>();
            foreach (string path in paths)
            {
                var data = loader(path);
                skipped += data.SkippedLines.Count;
                foreach (string message in data.SkippedLines) onSkippedLine?.Invoke(message);
                all.AddRange(data.Examples);
            }
            return all;
        }

        // The exemplar split: its files, its description, and whether it is the scored split itself.
        IReadOnlyList<string>? poolFiles;
        string poolName;
        string evaluated = EvalDataLocator.EvaluatedSplit(task);
        if (fewShotSplit is null)
        {
            poolFiles = locator.SplitFiles(task, "train");
            poolName = "train";
        }
        else if (EvalDataLocator.SplitNames.Contains(fewShotSplit, StringComparer.OrdinalIgnoreCase))
        {
            string split = fewShotSplit.ToLowerInvariant();
            poolFiles = locator.SplitFiles(task, split) ?? throw new DataFormatException(
                $"--fewshot-split {split}: {EvalDataLocator.Name(task)} has no {split} split in {locator.Root}" +
                (EvalDataLocator.Alternatives(task, split) is { Count: > 0 } a ? $" (expected {string.Join(" or ", a.Select(x => string.Join(" + ", x)))})" : ""));
            poolName = split;
        }
        else
        {
            string path = Path.GetFullPath(fewShotSplit);
            if (!File.Exists(path))
                throw new DataFormatException($"--fewshot-split {fewShotSplit}: neither a split ({string.Join(", ", EvalDataLocator.SplitNames)}) nor an existing file");
            poolFiles = [path];
            poolName = path;
        }
        bool poolIsEvaluated = poolFiles is not null && poolFiles.Order().SequenceEqual(evalFiles.Order());
        if (poolIsEvaluated) poolName = $"{evaluated} (the scored split, named by --fewshot-split; each example is left out of its own exemplars)";
        else if (poolFiles is not null && fewShotSplit is null) poolName = $"train ({string.Join(" + ", poolFiles.Select(f => Path.GetRelativePath(locator.Root, f)))})";

        ITaskEvaluator Build()
        {
            IReadOnlyList<T>? Pool<T>(Func<string, EvalDataset<T>> loader, IReadOnlyList<T> examples) =>
                poolFiles is null ? null : poolIsEvaluated ? examples : Load(loader, poolFiles);
            switch (task)
            {
                case EvalTask.Gsm8k or EvalTask.Gsm8kCotZeroShot:
                {
                    var examples = Load(Gsm8kLoader.Load, evalFiles);
                    return new Gsm8kEvaluator(examples, Pool(Gsm8kLoader.Load, examples), task == EvalTask.Gsm8kCotZeroShot, poolIsEvaluated);
                }
                case EvalTask.HumanEval:
                    return new HumanEvalEvaluator(Load(HumanEvalLoader.Load, evalFiles));
                case EvalTask.Sst2:
                {
                    var examples = Load(Sst2Loader.Load, evalFiles);
                    return new Sst2Evaluator(examples, Pool(Sst2Loader.Load, examples), poolIsEvaluated);
                }
                case EvalTask.Cola:
                {
                    var examples = Load(ColaLoader.Load, evalFiles);
                    return new ColaEvaluator(examples, Pool(ColaLoader.Load, examples), poolIsEvaluated);
                }
                case EvalTask.MedQa:
                {
                    var examples = Load(MedQaLoader.Load, evalFiles);
                    return new MedQaEvaluator(examples, Pool(MedQaLoader.Load, examples), poolIsEvaluated);
                }
                case EvalTask.ArcEasy or EvalTask.ArcChallenge:
                {
                    var examples = Load(ArcLoader.Load, evalFiles);
                    return new ArcEvaluator(examples, task == EvalTask.ArcChallenge, Pool(ArcLoader.Load, examples), poolIsEvaluated);
                }
                default:
                    throw new ArgumentOutOfRangeException(nameof(task), task, null);
            }
        }
        var inner = Build();
        if (task == EvalTask.HumanEval) poolFiles = null; // zero-shot only
        var files = evalFiles.Select(f => DataFileHash.Of("eval", f))
            .Concat(poolFiles is null || poolIsEvaluated ? [] : poolFiles.Select(f => DataFileHash.Of("fewshot", f))).ToArray();
        return new RecordedEvaluator(inner, files, poolFiles is null ? null : poolName, notes, skipped);
    }
}
