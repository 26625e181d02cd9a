namespace LoraMixer.Evaluation;

/// <summary>Builds a task's evaluator from the data folder, with its train split as the few-shot pool when present.</summary>
public static class TaskEvaluators
{
    /// <summary>
    /// Loads <paramref name="task"/>'s files through <paramref name="locator"/>; each skipped malformed line is
    /// passed to <paramref name="onSkippedLine"/> (one message naming file and line).
    /// </summary>
    /// <exception cref="Errors.DataFormatException">The evaluation file is missing or unreadable.</exception>
    public static ITaskEvaluator Create(EvalTask task, EvalDataLocator locator, Action<string>? onSkippedLine = null)
    {
        ArgumentNullException.ThrowIfNull(locator);
        IReadOnlyList<T> Load<T>(Func<string, EvalDataset<T>> loader, string path)
        {
            var data = loader(path);
            foreach (string message in data.SkippedLines) onSkippedLine?.Invoke(message);
            return data.Examples;
        }
        IReadOnlyList<T>? Pool<T>(Func<string, EvalDataset<T>> loader) =>
            locator.TrainPathFor(task) is { } path ? Load(loader, path) : null;

        string test = locator.PathFor(task);
        return task switch
        {
            EvalTask.Gsm8k => new Gsm8kEvaluator(Load(Gsm8kLoader.Load, test), Pool(Gsm8kLoader.Load)),
            EvalTask.HumanEval => new HumanEvalEvaluator(Load(HumanEvalLoader.Load, test)),
            EvalTask.Sst2 => new Sst2Evaluator(Load(Sst2Loader.Load, test), Pool(Sst2Loader.Load)),
            EvalTask.Cola => new ColaEvaluator(Load(ColaLoader.Load, test), Pool(ColaLoader.Load)),
            EvalTask.MedQa => new MedQaEvaluator(Load(MedQaLoader.Load, test), Pool(MedQaLoader.Load)),
            EvalTask.ArcEasy => new ArcEvaluator(Load(ArcLoader.Load, test), challenge: false, Pool(ArcLoader.Load)),
            EvalTask.ArcChallenge => new ArcEvaluator(Load(ArcLoader.Load, test), challenge: true, Pool(ArcLoader.Load)),
            _ => throw new ArgumentOutOfRangeException(nameof(task), task, null),
        };
    }
}
