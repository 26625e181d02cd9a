using LoraMixer.Errors;

namespace LoraMixer.Evaluation;

/// <summary>
/// Finds benchmark files: the folder is <c>--data-dir</c> when given, else <c>$LORAMIXER_DATA</c>. Inside it every
/// task has a fixed relative path (the upstream file names):
/// <c>gsm8k/test.jsonl</c> (few-shot pool <c>gsm8k/train.jsonl</c>), <c>humaneval/HumanEval.jsonl.gz</c>,
/// <c>sst2/dev.tsv</c> (<c>sst2/train.tsv</c>), <c>cola/in_domain_dev.tsv</c> (<c>cola/in_domain_train.tsv</c>),
/// <c>medqa/phrases_no_exclude_test.jsonl</c> (<c>medqa/phrases_no_exclude_train.jsonl</c>),
/// <c>arc/ARC-Easy-Test.jsonl</c> (<c>arc/ARC-Easy-Train.jsonl</c>) and <c>arc/ARC-Challenge-Test.jsonl</c>
/// (<c>arc/ARC-Challenge-Train.jsonl</c>).
/// </summary>
public sealed class EvalDataLocator
{
    /// <summary>The environment variable consulted when no folder is passed.</summary>
    public const string EnvironmentVariable = "LORAMIXER_DATA";

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

    /// <summary>The evaluation file of <paramref name="task"/>, relative to the data folder ('/' separated).</summary>
    public static string RelativePath(EvalTask task) => task switch
    {
        EvalTask.Gsm8k => "gsm8k/test.jsonl",
        EvalTask.HumanEval => "humaneval/HumanEval.jsonl.gz",
        EvalTask.Sst2 => "sst2/dev.tsv",
        EvalTask.Cola => "cola/in_domain_dev.tsv",
        EvalTask.MedQa => "medqa/phrases_no_exclude_test.jsonl",
        EvalTask.ArcEasy => "arc/ARC-Easy-Test.jsonl",
        EvalTask.ArcChallenge => "arc/ARC-Challenge-Test.jsonl",
        _ => throw new ArgumentOutOfRangeException(nameof(task), task, null),
    };

    /// <summary>The training split used as the few-shot pool of <paramref name="task"/>, or null (HumanEval has none).</summary>
    public static string? TrainRelativePath(EvalTask task) => task switch
    {
        EvalTask.Gsm8k => "gsm8k/train.jsonl",
        EvalTask.Sst2 => "sst2/train.tsv",
        EvalTask.Cola => "cola/in_domain_train.tsv",
        EvalTask.MedQa => "medqa/phrases_no_exclude_train.jsonl",
        EvalTask.ArcEasy => "arc/ARC-Easy-Train.jsonl",
        EvalTask.ArcChallenge => "arc/ARC-Challenge-Train.jsonl",
        _ => null,
    };

    /// <summary>Full path of the evaluation file of <paramref name="task"/> (whether or not it exists).</summary>
    public string PathFor(EvalTask task) => Path.Combine(Root, RelativePath(task).Replace('/', Path.DirectorySeparatorChar));

    /// <summary>Full path of the training split of <paramref name="task"/> when that file exists, else null.</summary>
    public string? TrainPathFor(EvalTask task)
    {
        if (TrainRelativePath(task) is not { } relative) return null;
        string path = Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));
        return File.Exists(path) ? path : null;
    }
}
