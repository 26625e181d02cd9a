using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Training;

/// <summary>Trains one LoRA adapter on a base model and returns it in PEFT form.</summary>
public static class LoraTrainingJob
{
    /// <summary>
    /// Injects fresh adapters per <paramref name="config"/> into <paramref name="model"/>, trains them on
    /// <paramref name="records"/>, and returns the adapter (the model keeps the trained adapters).
    /// </summary>
    public static (PeftAdapter Adapter, TrainingSummary Summary) Run(ICausalLM model, ITokenizer tokenizer,
        IReadOnlyList<TrainingRecord> records, LoraConfig config, string name, FineTuneSettings settings,
        IProgress<TrainingProgress>? progress = null, CancellationToken ct = default)
    {
        settings.Validate();
        var data = EncodedData.Create(tokenizer, records, settings);
        using (TorchSharp.torch.manual_seed(settings.Trainer.Seed)) { }
        var modules = AdapterInjector.Inject(model, config);
        var parameters = modules.SelectMany(m => new[]
        {
            new KeyValuePair<string, TorchSharp.Modules.Parameter>(m.Key + ".lora_A.weight", m.Value.lora_A),
            new KeyValuePair<string, TorchSharp.Modules.Parameter>(m.Key + ".lora_B.weight", m.Value.lora_B),
        }).ToArray();
        var objective = new CausalLmObjective(model, parameters, data.Train, data.Eval, settings.BatchSize, settings.Trainer.Seed,
            tokenizer.EosId ?? 0)
        {
            SetTraining = on => { foreach (var m in modules.Values) m.train(on); },
        };
        var trainer = new Trainer(settings.Trainer with { TrajectorySettings = Trajectory(settings, config, records) }, objective);
        var summary = trainer.Run(progress, ct);
        foreach (var m in modules.Values) m.eval();
        return (AdapterInjector.ToAdapter(name, config, modules), summary);
    }

    private static IReadOnlyDictionary<string, string> Trajectory(FineTuneSettings s, LoraConfig c, IReadOnlyList<TrainingRecord> records) => new Dictionary<string, string>
    {
        ["data"] = RecordsFingerprint.Of(records),
        ["lora_dropout"] = c.LoraDropout.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        ["use_rslora"] = c.UseRslora ? "true" : "false",
        ["batch_size"] = s.BatchSize.ToString(),
        ["max_length"] = s.MaxLength.ToString(),
        ["r"] = c.R.ToString(),
        ["lora_alpha"] = c.LoraAlpha.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["targets"] = c.TargetModulesRegex ?? string.Join(",", c.TargetModules),
    };
}
