using LoraMixer.Data;

namespace LoraMixer.Evaluation;

/// <summary>
/// A benchmark split as training records ({prompt, response, task}) in the evaluation prompt format, so that
/// what a model is trained on matches how <c>eval</c> asks (GSM8K: the reference solution ending in "#### n").
/// </summary>
public static class BenchmarkRecords
{
    /// <summary>
    /// The records of the benchmark file <paramref name="path"/> of <paramref name="task"/>, each labelled
    /// <paramref name="label"/>; skipped (malformed) lines go to <paramref name="warn"/>.
    /// </summary>
    public static IReadOnlyList<TrainingRecord> Load(EvalTask task, string path, string label, Action<string>? warn = null)
    {
        if (task == EvalTask.HumanEval) throw new ArgumentException("humaneval has no training split (164 test problems only)");
        void Warn(IReadOnlyList<string> skipped) { foreach (var s in skipped) warn?.Invoke(s); }
        switch (task)
        {
            case EvalTask.Gsm8k or EvalTask.Gsm8kCotZeroShot:
            {
                var data = Gsm8kLoader.Load(path);
                Warn(data.SkippedLines);
                // The evaluation prompt, and the reference solution ending in "#### answer" as the response.
                return data.Examples.Select((e, i) => new TrainingRecord($"Question: {e.Question}\nAnswer:", " " + e.Answer + "\n\n", null, label, path, i + 1)).ToArray();
            }
            case EvalTask.Sst2:
            {
                var data = Sst2Loader.Load(path);
                Warn(data.SkippedLines);
                return data.Examples.Select((e, i) => new TrainingRecord(Sst2Evaluator.Prompt(e), " " + Sst2Evaluator.LabelWords[e.Label], null, label, path, i + 1)).ToArray();
            }
            case EvalTask.Cola:
            {
                var data = ColaLoader.Load(path);
                Warn(data.SkippedLines);
                return data.Examples.Select((e, i) => new TrainingRecord(ColaEvaluator.Prompt(e), " " + ColaEvaluator.LabelWords[e.Label], null, label, path, i + 1)).ToArray();
            }
            case EvalTask.MedQa:
            {
                var data = MedQaLoader.Load(path);
                Warn(data.SkippedLines);
                return data.Examples.Select((e, i) => new TrainingRecord(MedQaEvaluator.Prompt(e), " " + e.Labels[e.Gold], null, label, path, i + 1)).ToArray();
            }
            default:
            {
                var data = ArcLoader.Load(path);
                Warn(data.SkippedLines);
                return data.Examples.Select((e, i) => new TrainingRecord(ArcEvaluator.Prompt(e), " " + e.Choices[e.Gold], null, label, path, i + 1)).ToArray();
            }
        }
    }
}
