using System.Text;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Evaluation;

/// <summary>
/// MedQA (US, 4 options) as lm-eval's <c>medqa_4options</c>: context "Question: {q}\nA. {a}\nB. {b}\n...Answer:",
/// choices " A".." D" (the option letters), metrics acc and acc_norm.
/// </summary>
public sealed class MedQaEvaluator : ITaskEvaluator
{
    /// <summary>Identifies the prompt wording.</summary>
    public const string TemplateId = "medqa-lettered-options-v1";

    private readonly IReadOnlyList<MultipleChoiceExample> _examples;
    private readonly IReadOnlyList<MultipleChoiceExample>? _fewShotPool;
    private readonly bool _poolIsEvaluatedSplit;

    /// <summary>The lm-eval task version and LoraMixer's protocol revision, recorded in every result.</summary>
    public const string ProtocolVersion = "lm-eval medqa_4options 1.0; loramixer 2";

    /// <summary>Creates the evaluator over <paramref name="examples"/>.</summary>
    public MedQaEvaluator(IReadOnlyList<MultipleChoiceExample> examples, IReadOnlyList<MultipleChoiceExample>? fewShotPool = null, bool poolIsEvaluatedSplit = false)
    {
        _examples = examples ?? throw new ArgumentNullException(nameof(examples));
        _fewShotPool = fewShotPool;
        _poolIsEvaluatedSplit = poolIsEvaluatedSplit;
    }

    /// <inheritdoc/>
    public string Task => "medqa_4options";

    /// <inheritdoc/>
    public int Count => _examples.Count;

    /// <summary>The prompt of one question.</summary>
    public static string Prompt(MultipleChoiceExample example)
    {
        var builder = new StringBuilder("Question: ").Append(example.Question).Append('\n');
        for (int i = 0; i < example.Choices.Count; i++) builder.Append(example.Labels[i]).Append(". ").Append(example.Choices[i]).Append('\n');
        return builder.Append("Answer:").ToString();
    }

    /// <inheritdoc/>
    public EvalResult Evaluate(ICausalLM model, ITokenizer tokenizer, EvalOptions options,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default) =>
        LoglikelihoodProtocol.Run(new LoglikelihoodProtocol.Spec<MultipleChoiceExample>(Task, TemplateId, _examples, _fewShotPool,
            Prompt, e => e.Labels, e => e.Gold, AccNorm: true, Mcc: false)
            { ProtocolVersion = ProtocolVersion, PoolIsEvaluatedSplit = _poolIsEvaluatedSplit }, model, tokenizer, options, progress, cancellationToken);
}
