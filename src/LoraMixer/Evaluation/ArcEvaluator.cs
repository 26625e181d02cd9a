using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// ARC-Easy / ARC-Challenge as lm-eval's <c>arc_easy</c>/<c>arc_challenge</c>: context
/// "Question: {stem}\nAnswer:", choices " {text}", metrics acc, acc_norm (by characters) and acc_bytes.
/// </summary>
public sealed class ArcEvaluator : ITaskEvaluator
{
    /// <summary>Identifies the prompt wording.</summary>
    public const string TemplateId = "arc-question-answer-v1";

    private readonly IReadOnlyList<MultipleChoiceExample> _examples;
    private readonly IReadOnlyList<MultipleChoiceExample>? _fewShotPool;
    private readonly bool _poolIsEvaluatedSplit;

    /// <summary>The lm-eval task version and LoraMixer's protocol revision, recorded in every result.</summary>
    public const string ProtocolVersion = "lm-eval arc_easy/arc_challenge 1.0; loramixer 2";

    /// <summary>Creates the evaluator; <paramref name="challenge"/> selects the task name arc_challenge over arc_easy.</summary>
    public ArcEvaluator(IReadOnlyList<MultipleChoiceExample> examples, bool challenge, IReadOnlyList<MultipleChoiceExample>? fewShotPool = null, bool poolIsEvaluatedSplit = false)
    {
        _examples = examples ?? throw new ArgumentNullException(nameof(examples));
        _fewShotPool = fewShotPool;
        _poolIsEvaluatedSplit = poolIsEvaluatedSplit;
        Task = challenge ? "arc_challenge" : "arc_easy";
    }

    /// <inheritdoc/>
    public string Task { get; }

    /// <inheritdoc/>
    public int Count => _examples.Count;

    /// <summary>The prompt of one question.</summary>
    public static string Prompt(MultipleChoiceExample example) => $"Question: {example.Question}\nAnswer:";

    /// <inheritdoc/>
    public EvalResult Evaluate(ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default) =>
        LoglikelihoodProtocol.Run(new LoglikelihoodProtocol.Spec<MultipleChoiceExample>(Task, TemplateId, _examples, _fewShotPool,
            Prompt, e => e.Choices, e => e.Gold, AccNorm: true, Mcc: false)
            { ProtocolVersion = ProtocolVersion, PoolIsEvaluatedSplit = _poolIsEvaluatedSplit, AccBytes = true }, model, tokenizer, options, progress, cancellationToken);
}
