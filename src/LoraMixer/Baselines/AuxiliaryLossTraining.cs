using LoraMixer.Data;
using LoraMixer.Models;
using LoraMixer.Runtime;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Baselines;

/// <summary>
/// The training loop that MoLE and MixLoRA share: the language-model loss plus an auxiliary loss over the
/// gate values their layers record during the forward pass. Recording is on only while training, and every
/// recorded tensor is disposed once the auxiliary loss has read it.
/// </summary>
internal static class AuxiliaryLossTraining
{
    /// <summary>
    /// Trains <paramref name="parameters"/> of <paramref name="model"/>. <paramref name="setRecording"/> turns
    /// the layers' recording on or off (off also drops what they hold), <paramref name="takeRecorded"/> hands
    /// over what they recorded since the last call, and <paramref name="auxiliaryLoss"/> maps those values
    /// and the batch's attention mask to the weighted auxiliary loss.
    /// </summary>
    public static TrainingSummary Run(ICausalLM model, IReadOnlyList<KeyValuePair<string, Parameter>> parameters,
        ITokenizer tokenizer, IReadOnlyList<TrainingRecord> records, FineTuneSettings settings,
        Action<bool> setRecording, Func<IReadOnlyList<Tensor>> takeRecorded, Func<IReadOnlyList<Tensor>, Tensor, Tensor> auxiliaryLoss,
        IProgress<TrainingProgress>? progress, CancellationToken ct)
    {
        settings.Validate();
        var data = EncodedData.Create(tokenizer, records, settings, null);
        foreach (var (_, p) in parameters) p.requires_grad = true;
        setRecording(true);
        try
        {
            var objective = new CausalLmObjective(model, parameters, data.Train, data.Eval, settings.BatchSize, settings.Trainer.Seed, tokenizer.EosId ?? 0)
            {
                BeforeForward = _ => takeRecorded().DisposeAll(),
                ExtraLoss = (batch, _, _) =>
                {
                    var recorded = takeRecorded();
                    try
                    {
                        return auxiliaryLoss(recorded, batch.AttentionMask);
                    }
                    finally
                    {
                        recorded.DisposeAll();
                    }
                },
            };
            return new Trainer(settings.Trainer, objective).Run(progress, ct);
        }
        finally
        {
            setRecording(false);
            foreach (var (_, p) in parameters) p.requires_grad = false;
        }
    }
}
