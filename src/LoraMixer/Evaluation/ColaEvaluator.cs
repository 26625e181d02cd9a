using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// CoLA as lm-eval's GLUE <c>cola</c>: "{sentence}\nQuestion: Does this sentence make sense?\nAnswer:",
/// choices " no"/" yes", headline metric mcc (acc also reported).
/// </summary>
public sealed class ColaEvaluator : ITaskEvaluator
{
    /// <summary>Identifies the prompt wording.</summary>
    public const string TemplateId = "cola-make-sense-v1";

    /// <summary>The label words, index = label.</summary>
    public static readonly IReadOnlyList<string> LabelWords = ["no", "yes"];

    private readonly IReadOnlyList<LabeledSentence> _examples;
    private readonly IReadOnlyList<LabeledSentence>? _fewShotPool;
    private readonly bool _poolIsEvaluatedSplit;

    /// <summary>The lm-eval task version and LoraMixer's protocol revision, recorded in every result.</summary>
    public const string ProtocolVersion = "lm-eval cola 1.0; loramixer 2";

    /// <summary>Creates the evaluator over <paramref name="examples"/>.</summary>
    public ColaEvaluator(IReadOnlyList<LabeledSentence> examples, IReadOnlyList<LabeledSentence>? fewShotPool = null, bool poolIsEvaluatedSplit = false)
    {
        _examples = examples ?? throw new ArgumentNullException(nameof(examples));
        _fewShotPool = fewShotPool;
        _poolIsEvaluatedSplit = poolIsEvaluatedSplit;
    }

    /// <inheritdoc/>
    public string Task => "cola";

    /// <inheritdoc/>
    public int Count => _examples.Count;

    /// <summary>The prompt of one sentence.</summary>
    public static string Prompt(LabeledSentence example) => $"{example.Sentence}\nQuestion: Does this sentence make sense?\nAnswer:";

    /// <inheritdoc/>
    public EvalResult Evaluate(ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default) =>
        LoglikelihoodProtocol.Run(new LoglikelihoodProtocol.Spec<LabeledSentence>(Task, TemplateId, _examples, _fewShotPool,
            Prompt, _ => LabelWords, e => e.Label, AccNorm: false, Mcc: true)
            { ProtocolVersion = ProtocolVersion, PoolIsEvaluatedSplit = _poolIsEvaluatedSplit }, model, tokenizer, options, progress, cancellationToken);
}
