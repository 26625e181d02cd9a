namespace LoraMixer.Evaluation;

/// <summary>
/// How many exemplars a prompt gets: the requested (or the task's default) number when an exemplar split exists,
/// else 0 with a note, because exemplars never come from the split being scored unless that split was named
/// explicitly (<c>--fewshot-split</c>), and then each example is left out of its own exemplars as lm-eval does.
/// </summary>
internal static class FewShotPlan
{
    public static (int Shots, IReadOnlyList<string> Notes) Resolve(string task, int? requested, int defaultShots, bool hasPool)
    {
        int shots = requested ?? defaultShots;
        if (shots == 0 || hasPool) return (shots, []);
        return (0, [$"{task}: no exemplar split (train) in the data folder, so 0-shot instead of {shots}-shot; exemplars never come from the scored split unless --fewshot-split names it"]);
    }
}
