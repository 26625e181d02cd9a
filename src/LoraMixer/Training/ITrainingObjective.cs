using TorchSharp;

namespace LoraMixer.Training;

/// <summary>
/// What a <see cref="Trainer"/> trains: the caller owns the model, the data and the loss; the trainer owns
/// the loop, the optimizer, the schedule and checkpoints. Implemented by LoRA training, router training and
/// pretraining alike. Each optimizer step runs inside a dispose scope of the trainer's: tensors created by
/// <see cref="TrainMicroStep"/>, <see cref="Evaluate"/> or <see cref="OnStepEnd"/> that must outlive the step
/// are detached from it (<c>DetachFromDisposeScope</c>).
/// </summary>
public interface ITrainingObjective
{
    /// <summary>The trainable parameters by unique name (safetensors keys); the list must not change during a run.</summary>
    IReadOnlyList<KeyValuePair<string, TorchSharp.Modules.Parameter>> Parameters { get; }

    /// <summary>Micro-batches in epoch <paramref name="epoch"/> (0-based); at least 1.</summary>
    int BatchesPerEpoch(int epoch);

    /// <summary>
    /// Runs the forward pass on micro-batch (<paramref name="epoch"/>, <paramref name="batchIndex"/>) and
    /// calls <c>backward()</c> on <c>loss · lossScale</c>, accumulating into the parameters' gradients.
    /// Which examples form that batch must be a pure function of (seed, epoch, batchIndex) so that a
    /// resumed run sees the same data; the trainer seeds torch's global RNG before each call, so dropout
    /// repeats too. Returns the unscaled loss.
    /// </summary>
    MicroStepResult TrainMicroStep(int epoch, int batchIndex, double lossScale);

    /// <summary>
    /// Held-out metrics (e.g. <c>eval_loss</c>, lower is better); must leave the model ready to train again.
    /// Called every <see cref="TrainerOptions.EvalEvery"/> steps and after the last step.
    /// </summary>
    IReadOnlyDictionary<string, double> Evaluate();

    /// <summary>Called before optimizer step <paramref name="step"/> (1-based) of <paramref name="totalSteps"/>, also after a resumption (e.g. for loss-weight warm-ups).</summary>
    void OnStepBegin(int step, int totalSteps) { }

    /// <summary>
    /// Clips the accumulated gradients of <paramref name="parameters"/> to <paramref name="maxNorm"/> (0 = only
    /// measure) and returns the norm before clipping; by default by their global L2 norm.
    /// </summary>
    double ClipGradients(IReadOnlyList<TorchSharp.torch.Tensor> parameters, double maxNorm) =>
        GradientClipping.ClipByGlobalNorm(parameters, maxNorm);

    /// <summary>Called after optimizer step <paramref name="step"/> (1-based) is applied, e.g. to collect routing statistics.</summary>
    void OnStepEnd(int step) { }
}
