using LoraMixer.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Training;

/// <summary>
/// A 4-8-1 MLP with dropout regressing a fixed synthetic target: small enough to train in milliseconds,
/// random enough (shuffled batches, dropout) that any slip in resumption or seeding changes the weights.
/// </summary>
internal sealed class TinyMlpObjective : ITrainingObjective, IDisposable
{
    private readonly Tensor _x, _y;
    private readonly Parameter _w1, _b1, _w2, _b2;
    private readonly long _dataSeed;
    private readonly int _batchSize;
    private readonly double _dropout;

    public TinyMlpObjective(long initSeed = 1, long dataSeed = 7, int batchSize = 4, double dropout = 0.2, int examples = 24)
    {
        _dataSeed = dataSeed;
        _batchSize = batchSize;
        _dropout = dropout;
        var data = new Generator(1234);
        _x = randn([examples, 4], generator: data);
        _y = (_x.select(1, 0) * 2 - _x.select(1, 1) * _x.select(1, 2) + 0.5).unsqueeze(1);
        var init = new Generator((ulong)initSeed);
        _w1 = new Parameter(randn([8, 4], generator: init) * 0.5);
        _b1 = new Parameter(randn([8], generator: init) * 0.1);
        _w2 = new Parameter(randn([1, 8], generator: init) * 0.5);
        _b2 = new Parameter(zeros([1]));
        Parameters = [new("mlp.fc1.weight", _w1), new("mlp.fc1.bias", _b1), new("mlp.fc2.weight", _w2), new("mlp.fc2.bias", _b2)];
        Examples = examples;
    }

    public int Examples { get; }

    public IReadOnlyList<KeyValuePair<string, Parameter>> Parameters { get; }

    /// <summary>Called before every micro-step with (epoch, batch); throw from it to simulate a crash.</summary>
    public Action<int, int>? BeforeMicroStep { get; init; }

    public List<int> StepsEnded { get; } = [];

    public int BatchesPerEpoch(int epoch) => Examples / _batchSize;

    public MicroStepResult TrainMicroStep(int epoch, int batchIndex, double lossScale)
    {
        BeforeMicroStep?.Invoke(epoch, batchIndex);
        using var scope = NewDisposeScope();
        // The data order is a pure function of (seed, epoch), as the trainer requires.
        Tensor order = randperm(Examples, generator: new Generator((ulong)(_dataSeed * 1000 + epoch)));
        Tensor rows = order.narrow(0, (long)batchIndex * _batchSize, _batchSize);
        Tensor loss = Loss(_x.index_select(0, rows), _y.index_select(0, rows), training: true);
        (loss * lossScale).backward();
        return new MicroStepResult(loss.item<float>(), _batchSize, new Dictionary<string, double> { ["w2_abs_mean"] = _w2.abs().mean().item<float>() });
    }

    public IReadOnlyDictionary<string, double> Evaluate()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return new Dictionary<string, double> { ["eval_loss"] = Loss(_x, _y, training: false).item<float>() };
    }

    public void OnStepEnd(int step) => StepsEnded.Add(step);

    /// <summary>Parameter values by name.</summary>
    public Dictionary<string, float[]> Snapshot() =>
        Parameters.ToDictionary(p => p.Key, p => p.Value.detach().data<float>().ToArray());

    private Tensor Loss(Tensor x, Tensor y, bool training)
    {
        Tensor hidden = nn.functional.relu(x.matmul(_w1.t()) + _b1);
        if (_dropout > 0) hidden = nn.functional.dropout(hidden, _dropout, training);
        Tensor prediction = hidden.matmul(_w2.t()) + _b2;
        return (prediction - y).square().mean();
    }

    public void Dispose()
    {
        foreach (Tensor t in new Tensor[] { _x, _y, _w1, _b1, _w2, _b2 }) t.Dispose();
    }
}
