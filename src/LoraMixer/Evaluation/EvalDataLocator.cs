using LoraMixer.Errors;

namespace LoraMixer.Evaluation;

/// <summary>
/// Finds benchmark files: the folder is <c>--data-dir</c> when given, else <c>$LORAMIXER_DATA</c>. Inside it every
/// task has fixed relative paths (the upstream file names) per split; a split may have alternatives, the first whose
/// files all exist wins:
/// <c>gsm8k/test.jsonl</c> (train <c>gsm8k/train.jsonl</c>), <c>humaneval/HumanEval.jsonl.gz</c>,
/// <c>sst2/dev.tsv</c> (train <c>sst2/train.tsv</c>), CoLA validation <c>cola/dev.tsv</c> (GLUE: in- and
/// out-of-domain, 1,043) or <c>cola/in_domain_dev.tsv</c> + <c>cola/out_of_domain_dev.tsv</c> (the public release)
/// or <c>cola/in_domain_dev.tsv</c> alone (527, noted in the result) (train <c>cola/in_domain_train.tsv</c> or
/// <c>cola/train.tsv</c>), <c>medqa/phrases_no_exclude_{test,train,dev}.jsonl</c>, and ARC as AI2 ships it
/// (<c>arc/ARC-Easy-Test.jsonl</c>, <c>-Train</c>, <c>-Dev</c>) or per split (<c>arc/ARC-Easy/test.jsonl</c>,
/// <c>train.jsonl</c>, <c>validation.jsonl</c>), the same for ARC-Challenge.
/// </summary>
public sealed class EvalDataLocator
{
    /// <summary>The environment variable consulted when no folder is passed.</summary>
    public const string EnvironmentVariable = "LORAMIXER_DATA";

    /// <summary>Split names accepted by <c>--fewshot-split</c> besides a file path.</summary>
    public static readonly IReadOnlyList<string> SplitNames = ["train", "validation", "test"];

    /// <summary>Creates a locator over <paramref name="root"/> (not checked; see <see cref="Resolve"/>).</summary>
    public EvalDataLocator(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        Root = Path.GetFullPath(root);
    }

    /// <summary>The data folder.</summary>
    public string Root { get; }

    /// <summary>
    /// The locator for <paramref name="dataDir"/> (the <c>--data-dir</c> flag) or, when null, <c>$LORAMIXER_DATA</c>.
    /// </summary>
    /// <exception cref="DataFormatException">Neither is set, or the folder does not exist.</exception>
    public static EvalDataLocator Resolve(string? dataDir, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string? root = string.IsNullOrWhiteSpace(dataDir) ? environment(EnvironmentVariable) : dataDir;
        if (string.IsNullOrWhiteSpace(root))
            throw new DataFormatException(
                $"No evaluation data folder: pass --data-dir DIR or set {EnvironmentVariable}=DIR, where DIR holds e.g. {RelativePath(EvalTask.Gsm8k)} and {RelativePath(EvalTask.HumanEval)}.");
        if (!Directory.Exists(root))
            throw new DataFormatException(
                $"Evaluation data folder {root} ({(string.IsNullOrWhiteSpace(dataDir) ? EnvironmentVariable : "--data-dir")}) does not exist; point it at the folder holding {RelativePath(EvalTask.Gsm8k)} etc.");
        return new EvalDataLocator(root);
    }

    /// <summary>The split a task scores: "test", or "validation" for the GLUE tasks (their test labels are not public).</summary>
    public static string EvaluatedSplit(EvalTask task) => task is EvalTask.Sst2 or EvalTask.Cola ? "validation" : "test";

    /// <summary>
    /// The alternatives for <paramref name="split"/> of <paramref name="task"/>, each a set of relative paths ('/'
    /// separated) that together make the split; empty when the task has no such split.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<string>> Alternatives(EvalTask task, string split)
    {
        static IReadOnlyList<IReadOnlyList<string>> One(params string[] paths) => paths.Select(p => (IReadOnlyList<string>)[p]).ToArray();
        static IReadOnlyList<IReadOnlyList<string>> Arc(string name, string ai2, string perSplit) => One($"arc/{name}-{ai2}.jsonl", $"arc/{name}/{perSplit}.jsonl");
        return (task, split) switch
        {
            (EvalTask.Gsm8k or EvalTask.Gsm8kCotZeroShot, "test") => One("gsm8k/test.jsonl"),
            (EvalTask.Gsm8k or EvalTask.Gsm8kCotZeroShot, "train") => One("gsm8k/train.jsonl"),
            (EvalTask.HumanEval, "test") => One("humaneval/HumanEval.jsonl.gz"),
            (EvalTask.Sst2, "validation") => One("sst2/dev.tsv"),
            (EvalTask.Sst2, "train") => One("sst2/train.tsv"),
            (EvalTask.Cola, "validation") => [["cola/dev.tsv"], ["cola/in_domain_dev.tsv", "cola/out_of_domain_dev.tsv"], ["cola/in_domain_dev.tsv"]],
            (EvalTask.Cola, "train") => One("cola/in_domain_train.tsv", "cola/train.tsv"),
            (EvalTask.MedQa, "test") => One("medqa/phrases_no_exclude_test.jsonl"),
            (EvalTask.MedQa, "train") => One("medqa/phrases_no_exclude_train.jsonl"),
            (EvalTask.MedQa, "validation") => One("medqa/phrases_no_exclude_dev.jsonl"),
            (EvalTask.ArcEasy, "test") => Arc("ARC-Easy", "Test", "test"),
            (EvalTask.ArcEasy, "train") => Arc("ARC-Easy", "Train", "train"),
            (EvalTask.ArcEasy, "validation") => Arc("ARC-Easy", "Dev", "validation"),
            (EvalTask.ArcChallenge, "test") => Arc("ARC-Challenge", "Test", "test"),
            (EvalTask.ArcChallenge, "train") => Arc("ARC-Challenge", "Train", "train"),
            (EvalTask.ArcChallenge, "validation") => Arc("ARC-Challenge", "Dev", "validation"),
            _ => [],
        };
    }

    /// <summary>The evaluation file of <paramref name="task"/> (its first alternative), relative to the data folder ('/' separated).</summary>
    public static string RelativePath(EvalTask task) => Alternatives(task, EvaluatedSplit(task))[0][0];

    /// <summary>The training split used as the few-shot pool of <paramref name="task"/> (first alternative), or null (HumanEval has none).</summary>
    public static string? TrainRelativePath(EvalTask task) => Alternatives(task, "train") is { Count: > 0 } a ? a[0][0] : null;

    /// <summary>Full path of the evaluation file of <paramref name="task"/> (first alternative, whether or not it exists).</summary>
    public string PathFor(EvalTask task) => Full(RelativePath(task));

    /// <summary>Full path of the training split of <paramref name="task"/> when a file of it exists, else null.</summary>
    public string? TrainPathFor(EvalTask task) => SplitFiles(task, "train") is [var single] ? single : null;

    /// <summary>
    /// The files of <paramref name="split"/> of <paramref name="task"/>: the first alternative whose files all exist, or
    /// null when none does.
    /// </summary>
    public IReadOnlyList<string>? SplitFiles(EvalTask task, string split) =>
        Alternatives(task, split).Select(a => a.Select(Full).ToArray()).FirstOrDefault(files => files.All(File.Exists));

    /// <summary>
    /// The files <paramref name="task"/> scores, with notes on a partial split (CoLA in-domain only).
    /// </summary>
    /// <exception cref="DataFormatException">No alternative exists; the message names the expected paths.</exception>
    public (IReadOnlyList<string> Files, IReadOnlyList<string> Notes) EvalFiles(EvalTask task)
    {
        string split = EvaluatedSplit(task);
        var files = SplitFiles(task, split)
            ?? throw new DataFormatException($"{Name(task)}: no {split} data in {Root}: expected {string.Join(" or ", Alternatives(task, split).Select(a => string.Join(" + ", a)))}");
        var notes = new List<string>();
        if (task == EvalTask.Cola && files.Count == 1 && files[0].EndsWith("in_domain_dev.tsv", StringComparison.Ordinal))
            notes.Add("cola: only the in-domain dev (cola/in_domain_dev.tsv) exists, so this is not GLUE's full validation (in- and out-of-domain, 1,043 sentences); add cola/out_of_domain_dev.tsv or GLUE's cola/dev.tsv");
        return (files, notes);
    }

    /// <summary>Every data file a task of <paramref name="task"/> would read that exists (evaluated split and train split).</summary>
    public IReadOnlyList<string> ExistingFiles(EvalTask task) =>
        (SplitFiles(task, EvaluatedSplit(task)) ?? []).Concat(SplitFiles(task, "train") ?? []).ToArray();

    /// <summary>The task's name on the command line.</summary>
    public static string Name(EvalTask task) => task switch
    {
        EvalTask.Gsm8k => "gsm8k",
        EvalTask.Gsm8kCotZeroShot => "gsm8k-cot-zeroshot",
        EvalTask.HumanEval => "humaneval",
        EvalTask.Sst2 => "sst2",
        EvalTask.Cola => "cola",
        EvalTask.MedQa => "medqa",
        EvalTask.ArcEasy => "arc-e",
        EvalTask.ArcChallenge => "arc-c",
        _ => throw new ArgumentOutOfRangeException(nameof(task), task, null),
    };

    private string Full(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));
}
