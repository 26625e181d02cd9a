using LoraMixer.Data;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Runtime;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Baselines;

/// <summary>
/// MoLE, Mixture of LoRA Experts (Wu et al., ICLR 2024), over trained LoRA experts that stay frozen: every
/// adapted matrix gets a gate over the experts' outputs (<see cref="MoleLinear"/>), and only the gates train,
/// on the language-model loss plus α times the gating-balance loss (<see cref="BalanceLoss"/>). All experts
/// stay active at inference (dense gates).
/// </summary>
public sealed class Mole : IDisposable
{
    /// <summary>Weight α of the gating-balance loss (our choice; the paper leaves it as a hyper-parameter).</summary>
    public const double BalanceWeight = 0.01;

    /// <summary>Softmax temperature τ of the gates (our choice; the paper leaves it as a hyper-parameter).</summary>
    public const double DefaultTemperature = 1.0;

    private readonly IReadOnlyList<MoleLinear> _gated;

    private Mole(ICausalLM model, IReadOnlyList<MoleLinear> gated)
    {
        Model = model;
        _gated = gated;
    }

    /// <summary>The adapted model.</summary>
    public ICausalLM Model { get; }

    /// <summary>The gated matrices, in model order.</summary>
    public IReadOnlyList<MoleLinear> Gated => _gated;

    /// <summary>
    /// Puts the experts of <paramref name="experts"/> (a mixer attached to another instance of the same base
    /// model) into <paramref name="model"/>, each adapted matrix with a zero gate (uniform weights).
    /// </summary>
    public static Mole FromMixer(ICausalLM model, LoraMixerModel experts, double temperature = DefaultTemperature)
    {
        var byName = experts.Projections.ToDictionary(p => p.ModuleName);
        var gated = new List<MoleLinear>();
        foreach (var target in Lora.TargetLinears.Find(model, byName.ContainsKey))
        {
            var p = byName[target.ModuleName];
            var linear = new MoleLinear(target.ModuleName, target.Linear, p.lora_A, p.lora_B, p.Scalings, temperature);
            target.Replace(linear);
            gated.Add(linear);
        }
        if (gated.Count != byName.Count)
            throw new ArgumentException($"MoLE found {gated.Count} of the experts' {byName.Count} matrices in the model; is it the experts' base model?");
        return new Mole(model, gated);
    }

    /// <summary>The gates, named <c>&lt;module&gt;.gate</c>.</summary>
    public IReadOnlyList<KeyValuePair<string, Parameter>> Parameters() =>
        _gated.Select(g => new KeyValuePair<string, Parameter>(g.ModuleName + ".gate", g.gate)).ToArray();

    /// <summary>Number of trainable values (the gates).</summary>
    public long ParameterCount => Parameters().Sum(p => p.Value.numel());

    /// <summary>
    /// MoLE's gating-balance loss <c>−log Π_i q_i = −Σ_i log q_i</c>, where q_i is expert i's gate weight
    /// averaged over the M gates and the real tokens of a sample; averaged over the samples. It is smallest
    /// (E·log E) when every expert gets the same average weight.
    /// </summary>
    /// <param name="gates">Gate weights per gated matrix, [B, T, E] each.</param>
    /// <param name="tokenMask">[B, T], non-zero for real tokens.</param>
    public static Tensor BalanceLoss(IReadOnlyList<Tensor> gates, Tensor tokenMask)
    {
        if (gates.Count == 0) throw new ArgumentException("the gating-balance loss needs the gate weights of at least one matrix");
        using var scope = NewDisposeScope();
        var mask = tokenMask.to(gates[0].dtype).to(gates[0].device).unsqueeze(-1);                  // [B, T, 1]
        Tensor? total = null;
        foreach (var g in gates)
        {
            var perSample = (g * mask).sum(dim: 1);                                               // [B, E]
            total = total is null ? perSample : total + perSample;
        }
        var q = total! / (mask.sum(dim: 1) * gates.Count).clamp_min(1);                          // [B, E]
        return (-q.clamp_min(1e-12).log().sum(-1)).mean().MoveToOuterDisposeScope();
    }

    /// <summary>Trains the gates on <paramref name="records"/> (experts frozen): LM loss + α · gating-balance loss.</summary>
    public TrainingSummary Train(ITokenizer tokenizer, IReadOnlyList<TrainingRecord> records, FineTuneSettings settings,
        IProgress<TrainingProgress>? progress = null, CancellationToken ct = default) =>
        AuxiliaryLossTraining.Run(Model, Parameters(), tokenizer, records, settings, SetRecording, TakeRecorded,
            (recorded, mask) => BalanceLoss(recorded, mask) * BalanceWeight, progress, ct);

    private void SetRecording(bool on)
    {
        foreach (var g in _gated)
        {
            g.Record = on;
            if (!on) g.TakeRecorded().DisposeAll();
        }
    }

    private IReadOnlyList<Tensor> TakeRecorded() => _gated.SelectMany(g => g.TakeRecorded()).ToArray();

    /// <inheritdoc />
    public void Dispose() => SetRecording(false);
}
