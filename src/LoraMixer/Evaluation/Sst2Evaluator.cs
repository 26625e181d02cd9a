using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// SST-2 as lm-eval's GLUE <c>sst2</c>: "{sentence}\nQuestion: Is this sentence positive or negative?\nAnswer:",
/// choices " negative"/" positive", metric acc.
/// </summary>
public sealed class Sst2Evaluator : ITaskEvaluator
{
    /// <summary>Identifies the prompt wording.</summary>
    public const string TemplateId = "sst2-positive-or-negative-v1";

    /// <summary>The label words, index = label.</summary>
    public static readonly IReadOnlyList<string> LabelWords = ["negative", "positive"];

    private readonly IReadOnlyList<LabeledSentence> _examples;
    private readonly IReadOnlyList<LabeledSentence>? _fewShotPool;
    private readonly bool _poolIsEvaluatedSplit;

    /// <summary>The lm-eval task version and LoraMixer's protocol revision, recorded in every result.</summary>
    public const string ProtocolVersion = "lm-eval sst2 1.0; loramixer 2";

    /// <summary>Creates the evaluator over <paramref name="examples"/>.</summary>
    public Sst2Evaluator(IReadOnlyList<LabeledSentence> examples, IReadOnlyList<LabeledSentence>? fewShotPool = null, bool poolIsEvaluatedSplit = false)
    {
        _examples = examples ?? throw new ArgumentNullException(nameof(examples));
        _fewShotPool = fewShotPool;
        _poolIsEvaluatedSplit = poolIsEvaluatedSplit;
    }

    /// <inheritdoc/>
    public string Task => "sst2";

    /// <inheritdoc/>
    public int Count => _examples.Count;

    /// <summary>The prompt of one sentence.</summary>
    public static string Prompt(LabeledSentence example) => $"{example.Sentence}\nQuestion: Is this sentence positive or negative?\nAnswer:";

    /// <inheritdoc/>
    public EvalResult Evaluate(ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default) =>
        LoglikelihoodProtocol.Run(new LoglikelihoodProtocol.Spec<LabeledSentence>(Task, TemplateId, _examples, _fewShotPool,
            Prompt, _ => LabelWords, e => e.Label, AccNorm: false, Mcc: false)
            { ProtocolVersion = ProtocolVersion, PoolIsEvaluatedSplit = _poolIsEvaluatedSplit }, model, tokenizer, options, progress, cancellationToken);
}
