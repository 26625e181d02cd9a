using LoraMixer.Data;
using LoraMixer.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Training;

/// <summary>
/// Next-token cross-entropy on the target tokens of encoded examples (response tokens only for
/// prompt/response records), batched by length, with optional hooks for routing (hard experts per
/// sample) and extra loss terms (the RSL).
/// </summary>
public sealed class CausalLmObjective : ITrainingObjective
{
    private readonly ICausalLM _model;
    private readonly IReadOnlyList<EncodedExample> _train, _eval;
    private readonly int _batchSize, _padId;
    private readonly long _seed;
    private readonly int[] _lengths;
    private (int Epoch, IReadOnlyList<int[]> Batches)? _epochBatches;
    private int _step = 1, _totalSteps = 1;

    /// <summary>Trains <paramref name="parameters"/> of <paramref name="model"/> on <paramref name="train"/>.</summary>
    public CausalLmObjective(ICausalLM model, IReadOnlyList<KeyValuePair<string, Parameter>> parameters,
        IReadOnlyList<EncodedExample> train, IReadOnlyList<EncodedExample> eval, int batchSize, long seed, int padId)
    {
        if (train.Count == 0) throw new ArgumentException("no training examples");
        if (batchSize < 1) throw new ArgumentException($"batch size must be at least 1, got {batchSize}");
        _model = model;
        Parameters = parameters;
        _train = train;
        _eval = eval;
        _batchSize = batchSize;
        _seed = seed;
        _padId = padId;
        _lengths = train.Select(e => e.Length).ToArray();
    }

    /// <inheritdoc />
    public IReadOnlyList<KeyValuePair<string, Parameter>> Parameters { get; }

    /// <summary>Runs before each forward pass (e.g. sets the hard-routing expert of every sample).</summary>
    public Action<TrainingBatch>? BeforeForward { get; init; }

    /// <summary>
    /// An extra loss after each training forward pass, given the batch, the optimizer step (1-based) and the
    /// total steps (e.g. the RSL with its warm-up); null adds nothing.
    /// </summary>
    public Func<TrainingBatch, int, int, Tensor?>? ExtraLoss { get; init; }

    /// <summary>Extra metrics of the latest training forward pass (e.g. routing statistics), merged into the step's log line.</summary>
    public Func<IReadOnlyDictionary<string, double>?>? ExtraMetrics { get; init; }

    /// <summary>
    /// How gradients are clipped before each optimizer step (parameters, max norm → norm before clipping);
    /// null = by their global norm. Stage 1 clips each stacked expert on its own.
    /// </summary>
    public Func<IReadOnlyList<Tensor>, double, double>? ClipGradientsBy { get; init; }

    /// <inheritdoc />
    public double ClipGradients(IReadOnlyList<Tensor> parameters, double maxNorm) =>
        ClipGradientsBy?.Invoke(parameters, maxNorm) ?? GradientClipping.ClipByGlobalNorm(parameters, maxNorm);

    /// <summary>Switches dropout of the trained modules on (true) or off (false).</summary>
    public Action<bool>? SetTraining { get; init; }

    /// <summary>Called after each optimizer step.</summary>
    public Action<int>? StepEnded { get; init; }

    /// <inheritdoc />
    public int BatchesPerEpoch(int epoch) => BatchesOf(epoch).Count;

    /// <inheritdoc />
    public MicroStepResult TrainMicroStep(int epoch, int batchIndex, double lossScale)
    {
        using var scope = NewDisposeScope();
        SetTraining?.Invoke(true);
        var indices = BatchesOf(epoch)[batchIndex];
        using var batch = BatchCollator.Collate(indices.Select(i => _train[i]).ToArray(), _padId, _model.Device);
        BeforeForward?.Invoke(batch);
        var logits = _model.Forward(batch.InputIds, batch.AttentionMask);
        var ce = MaskedCrossEntropy(logits, batch.TargetIds, batch.TargetMask);
        var extra = ExtraLoss?.Invoke(batch, _step, _totalSteps);
        var loss = extra is null ? ce : ce + extra;
        (loss * lossScale).backward();
        var metrics = extra is null ? new Dictionary<string, double>() : new Dictionary<string, double> { ["aux_loss"] = extra.item<float>() };
        foreach (var (key, value) in ExtraMetrics?.Invoke() ?? new Dictionary<string, double>()) metrics[key] = value;
        return new MicroStepResult(ce.item<float>(), batch.TokenCount, metrics.Count > 0 ? metrics : null);
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, double> Evaluate()
    {
        if (_eval.Count == 0) return new Dictionary<string, double>();
        SetTraining?.Invoke(false);
        using var noGrad = no_grad();
        double total = 0;
        long tokens = 0;
        for (int start = 0; start < _eval.Count; start += _batchSize)
        {
            using var scope = NewDisposeScope();
            var examples = _eval.Skip(start).Take(_batchSize).ToArray();
            using var batch = BatchCollator.Collate(examples, _padId, _model.Device);
            BeforeForward?.Invoke(batch);
            var logits = _model.Forward(batch.InputIds, batch.AttentionMask);
            total += MaskedCrossEntropy(logits, batch.TargetIds, batch.TargetMask).item<float>() * batch.TokenCount;
            tokens += batch.TokenCount;
        }
        SetTraining?.Invoke(true);
        return new Dictionary<string, double> { ["eval_loss"] = total / Math.Max(1, tokens) };
    }

    /// <inheritdoc />
    public void OnStepBegin(int step, int totalSteps) => (_step, _totalSteps) = (step, totalSteps);

    /// <inheritdoc />
    public void OnStepEnd(int step) => StepEnded?.Invoke(step);

    /// <summary>Mean cross-entropy over positions where <paramref name="mask"/> is 1.</summary>
    public static Tensor MaskedCrossEntropy(Tensor logits, Tensor targets, Tensor mask)
    {
        using var scope = NewDisposeScope();
        long vocab = logits.shape[^1];
        var perToken = nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), reduction: nn.Reduction.None);
        var m = mask.reshape(-1).to(perToken.dtype);
        return ((perToken * m).sum() / m.sum().clamp_min(1)).MoveToOuterDisposeScope();
    }

    private IReadOnlyList<int[]> BatchesOf(int epoch)
    {
        if (_epochBatches is not { } cached || cached.Epoch != epoch)
            _epochBatches = (epoch, LengthBucketedBatches.Create(_lengths, _batchSize, (int)_seed, epoch));
        return _epochBatches.Value.Batches;
    }
}
