using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Training;

/// <summary>
/// The training loop, readable top to bottom: each optimizer step runs
/// <see cref="TrainerOptions.GradientAccumulationSteps"/> micro-steps (loss scaled by 1/count), clips the
/// global gradient norm, takes the scheduled learning rate, steps AdamW and drops the gradients; then it
/// logs, evaluates and checkpoints when due, and reports progress. Cancellation stops at the next step
/// boundary with a checkpoint. With <see cref="TrainerOptions.Resume"/>, a run continues from the latest
/// checkpoint to the same parameters it would have reached uninterrupted.
/// </summary>
public sealed class Trainer
{
    private const string LogFile = "train_log.jsonl";
    private readonly TrainerOptions _options;
    private readonly ITrainingObjective _objective;

    /// <summary>Validates <paramref name="options"/> (see <see cref="TrainerOptions.Validate"/>) and the objective's parameters.</summary>
    public Trainer(TrainerOptions options, ITrainingObjective objective)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(objective);
        options.Validate();
        _options = options;
        _objective = objective;
    }

    /// <summary>
    /// Trains to the last step or until <paramref name="ct"/> is cancelled (then a checkpoint is saved at
    /// the current step and the summary says <see cref="TrainingSummary.Interrupted"/>).
    /// <paramref name="progress"/> is called synchronously on this thread after every step.
    /// </summary>
    public TrainingSummary Run(IProgress<TrainingProgress>? progress = null, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        var parameters = CheckedParameters(_objective.Parameters);
        int totalSteps = CountTotalSteps();
        var schedule = LearningRateSchedule.For(_options);
        var trajectory = TrajectoryOf(_options, totalSteps, _objective.BatchesPerEpoch(0));
        string optionsHash = Hash(trajectory);
        using var optimizer = new AdamW(parameters, _options.Beta1, _options.Beta2, _options.Epsilon, _options.WeightDecay);

        int step = 0, epoch = 0, batch = 0;
        long micro = 0;
        double? bestEvalLoss = null;
        int? bestEvalStep = null;
        int? resumedFrom = null;
        TrainingLog? log = null;
        string? lastCheckpoint = null;
        try
        {
            if (_options.OutputDir is string outputDir)
            {
                string logPath = Path.Combine(outputDir, LogFile);
                TrainingCheckpoint? latest = null;
                if (_options.Resume)
                {
                    latest = TrainingCheckpoint.FindLatest(outputDir);
                    TrainingCheckpoint.RemoveStale(outputDir, latest);
                }
                else if (TrainingCheckpoint.AnyIn(outputDir) || File.Exists(logPath))
                {
                    throw new ArgumentException(
                        $"Output folder {outputDir} already holds a training run ({LogFile} or checkpoints/); resume it (--resume), or choose another folder.");
                }
                if (latest is not null)
                {
                    CheckSameTrajectory(latest, trajectory, optionsHash);
                    latest.RestoreParameters(parameters);
                    latest.RestoreOptimizer(optimizer);
                    TrainerState s = latest.State;
                    (step, epoch, batch, micro) = (s.Step, s.Epoch, s.BatchIndex, s.MicroIndex);
                    (bestEvalLoss, bestEvalStep) = (s.BestEvalLoss, s.BestEvalStep);
                    resumedFrom = step;
                    lastCheckpoint = latest.Directory;
                    log = TrainingLog.Resume(logPath, s.LogLines);
                }
                else
                {
                    log = TrainingLog.Create(logPath);
                }
            }

            int firstStep = step, lastSavedStep = step;
            bool interrupted = false;
            double? finalLoss = null;
            IReadOnlyDictionary<string, double>? finalEval = null;
            var trainTime = TimeSpan.Zero;
            while (step < totalSteps)
            {
                if (ct.IsCancellationRequested)
                {
                    interrupted = true;
                    break;
                }
                int batches = BatchesIn(epoch);
                if (batch >= batches)
                {
                    (epoch, batch) = (epoch + 1, 0);
                    continue;
                }

                // Whatever tensors the step leaves behind (the objective's, gradient handles) go with it, so
                // memory stays flat over a long run.
                using var stepScope = torch.NewDisposeScope();

                // One optimizer step: accumulate gradients over up to GradientAccumulationSteps micro-batches
                // of this epoch; the last step of an epoch may have fewer, and averages over those.
                var stepClock = Stopwatch.StartNew();
                int microSteps = Math.Min(_options.GradientAccumulationSteps, batches - batch);
                _objective.OnStepBegin(step + 1, totalSteps);
                double lossScale = 1.0 / microSteps;
                double lossSum = 0;
                long tokens = 0;
                var metricSums = new Dictionary<string, double>(StringComparer.Ordinal);
                for (int k = 0; k < microSteps; k++)
                {
                    // Reseeding from the micro-step index makes dropout a function of position alone, so a
                    // resumed run draws the same masks as an uninterrupted one.
                    using (torch.manual_seed(MicroSeed(_options.Seed, micro))) { }
                    MicroStepResult result = _objective.TrainMicroStep(epoch, batch, lossScale);
                    lossSum += result.Loss;
                    tokens += result.Tokens;
                    foreach (var (name, value) in result.Metrics ?? new Dictionary<string, double>())
                        metricSums[name] = metricSums.GetValueOrDefault(name) + value;
                    batch++;
                    micro++;
                }
                double gradNorm = _objective.ClipGradients(parameters.Select(p => (Tensor)p.Value).ToArray(), _options.MaxGradNorm);
                double lr = schedule.At(step + 1, totalSteps);
                optimizer.Step(lr);
                optimizer.ZeroGrad();
                step++;
                _objective.OnStepEnd(step);
                stepClock.Stop();
                trainTime += stepClock.Elapsed;

                double loss = lossSum / microSteps;
                var metrics = metricSums.ToDictionary(m => m.Key, m => m.Value / microSteps, StringComparer.Ordinal);
                double epochProgress = epoch + (double)batch / batches;
                double tokensPerSecond = tokens / Math.Max(stepClock.Elapsed.TotalSeconds, 1e-9);
                finalLoss = loss;
                log?.WriteStep(step, epochProgress, loss, lr, gradNorm, tokensPerSecond, metrics);

                IReadOnlyDictionary<string, double>? eval = null;
                if (step == totalSteps || (_options.EvalEvery > 0 && step % _options.EvalEvery == 0))
                {
                    eval = _objective.Evaluate();
                    finalEval = eval;
                    log?.WriteEval(step, eval);
                    if (eval.TryGetValue("eval_loss", out double evalLoss) && double.IsFinite(evalLoss) && !(evalLoss >= bestEvalLoss))
                        (bestEvalLoss, bestEvalStep) = (evalLoss, step);
                }

                string? saved = null;
                if (log is not null && (step == totalSteps || (_options.CheckpointEvery > 0 && step % _options.CheckpointEvery == 0)))
                {
                    saved = Save(optimizer, parameters, log, step, epoch, batch, micro, totalSteps, optionsHash, trajectory, bestEvalLoss, bestEvalStep);
                    (lastCheckpoint, lastSavedStep) = (saved, step);
                }

                double secondsPerStep = trainTime.TotalSeconds / (step - firstStep);
                progress?.Report(new TrainingProgress
                {
                    Step = step,
                    TotalSteps = totalSteps,
                    Epoch = epochProgress,
                    Loss = loss,
                    LearningRate = lr,
                    GradNorm = gradNorm,
                    TokensPerSecond = tokensPerSecond,
                    Elapsed = clock.Elapsed,
                    Eta = TimeSpan.FromSeconds(secondsPerStep * (totalSteps - step)),
                    Metrics = metrics,
                    Eval = eval,
                    Checkpoint = saved,
                });
            }

            if (interrupted && log is not null && step > lastSavedStep)
                lastCheckpoint = Save(optimizer, parameters, log, step, epoch, batch, micro, totalSteps, optionsHash, trajectory, bestEvalLoss, bestEvalStep);

            return new TrainingSummary
            {
                Steps = step,
                TotalSteps = totalSteps,
                Interrupted = interrupted,
                ResumedFromStep = resumedFrom,
                FinalLoss = finalLoss,
                FinalEval = finalEval,
                BestEvalLoss = bestEvalLoss,
                BestEvalStep = bestEvalStep,
                LastCheckpoint = lastCheckpoint,
                Elapsed = clock.Elapsed,
            };
        }
        finally
        {
            log?.Dispose();
        }
    }

    /// <summary>
    /// The torch seed of micro-step <paramref name="microIndex"/>: the SplitMix64 output for that index
    /// of a stream started at <paramref name="seed"/>, so neighbouring steps get unrelated seeds.
    /// </summary>
    public static long MicroSeed(long seed, long microIndex)
    {
        ulong z = unchecked((ulong)seed + (ulong)(microIndex + 1) * 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (long)(z >> 1);
    }

    /// <summary>Optimizer steps in the run: <see cref="TrainerOptions.MaxSteps"/>, else ⌈batches / accumulation⌉ summed over the epochs.</summary>
    public int CountTotalSteps()
    {
        if (_options.MaxSteps is int maxSteps) return maxSteps;
        long total = 0;
        for (int e = 0; e < _options.Epochs; e++)
            total += (BatchesIn(e) + _options.GradientAccumulationSteps - 1) / _options.GradientAccumulationSteps;
        return checked((int)total);
    }

    private string Save(AdamW optimizer, IReadOnlyList<KeyValuePair<string, Parameter>> parameters, TrainingLog log,
        int step, int epoch, int batch, long micro, int totalSteps, string optionsHash, IReadOnlyDictionary<string, string> trajectory,
        double? bestEvalLoss, int? bestEvalStep)
    {
        // The log lines a checkpoint counts must survive any crash that the checkpoint survives.
        log.Sync();
        var state = new TrainerState
        {
            Step = step,
            Epoch = epoch,
            BatchIndex = batch,
            MicroIndex = micro,
            TotalSteps = totalSteps,
            Seed = _options.Seed,
            OptionsHash = optionsHash,
            Trajectory = trajectory,
            BestEvalLoss = bestEvalLoss,
            BestEvalStep = bestEvalStep,
            LogLines = log.LineCount,
        };
        return TrainingCheckpoint.Save(_options.OutputDir!, state, parameters, optimizer, _options.KeepCheckpoints);
    }

    private int BatchesIn(int epoch)
    {
        int batches = _objective.BatchesPerEpoch(epoch);
        if (batches < 1)
            throw new InvalidOperationException($"The training objective reports {batches} batches in epoch {epoch}; there must be at least one (is the training data empty?).");
        return batches;
    }

    private static IReadOnlyList<KeyValuePair<string, Parameter>> CheckedParameters(IReadOnlyList<KeyValuePair<string, Parameter>>? parameters)
    {
        if (parameters is null || parameters.Count == 0)
            throw new InvalidOperationException("The training objective has no trainable parameters; nothing would be trained.");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, parameter) in parameters)
        {
            if (string.IsNullOrEmpty(name)) throw new InvalidOperationException("A trainable parameter of the objective has an empty name.");
            if (!names.Add(name)) throw new InvalidOperationException($"The trainable parameter name '{name}' appears twice.");
            if (parameter is null || !parameter.requires_grad)
                throw new InvalidOperationException($"Trainable parameter '{name}' does not require gradients; pass only parameters that are trained.");
        }
        return parameters.ToArray();
    }

    /// <summary>Every setting that changes which parameters a run reaches; resuming requires them all unchanged.</summary>
    private static SortedDictionary<string, string> TrajectoryOf(TrainerOptions o, int totalSteps, int batchesInFirstEpoch)
    {
        static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        var settings = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [nameof(o.LearningRate)] = F(o.LearningRate),
            [nameof(o.WeightDecay)] = F(o.WeightDecay),
            [nameof(o.Beta1)] = F(o.Beta1),
            [nameof(o.Beta2)] = F(o.Beta2),
            [nameof(o.Epsilon)] = F(o.Epsilon),
            [nameof(o.WarmupRatio)] = o.WarmupSteps is null ? F(o.WarmupRatio) : "-",
            [nameof(o.WarmupSteps)] = o.WarmupSteps?.ToString(CultureInfo.InvariantCulture) ?? "-",
            [nameof(o.MinLearningRateRatio)] = F(o.MinLearningRateRatio),
            [nameof(o.MaxGradNorm)] = F(o.MaxGradNorm),
            [nameof(o.GradientAccumulationSteps)] = o.GradientAccumulationSteps.ToString(CultureInfo.InvariantCulture),
            [nameof(o.Seed)] = o.Seed.ToString(CultureInfo.InvariantCulture),
            ["TotalSteps"] = totalSteps.ToString(CultureInfo.InvariantCulture),
            ["BatchesPerEpoch"] = batchesInFirstEpoch.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in o.TrajectorySettings ?? new Dictionary<string, string>())
            settings[CallerPrefix + key] = value;
        return settings;
    }

    private static string Hash(IReadOnlyDictionary<string, string> trajectory)
    {
        var text = new StringBuilder();
        foreach (var (key, value) in trajectory) text.Append(key).Append('=').Append(value).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    private void CheckSameTrajectory(TrainingCheckpoint checkpoint, IReadOnlyDictionary<string, string> now, string hash)
    {
        if (checkpoint.State.OptionsHash == hash) return;
        var saved = checkpoint.State.Trajectory;
        foreach (string key in saved.Keys.Union(now.Keys).Order(StringComparer.Ordinal))
        {
            string before = saved.GetValueOrDefault(key) ?? "(unset)", after = now.GetValueOrDefault(key) ?? "(unset)";
            if (before == after) continue;
            string bare = key.StartsWith(CallerPrefix, StringComparison.Ordinal) ? key[CallerPrefix.Length..] : key;
            string name = _options.SettingNames?.GetValueOrDefault(bare) ?? bare;
            string hint = bare switch
            {
                "TotalSteps" => " (the number of optimizer steps: epochs or steps, data size and batch size)",
                "BatchesPerEpoch" => " (the training data or the batch size changed)",
                "data" => " (the training records changed)",
                _ => "",
            };
            throw new ArgumentException(
                $"cannot resume from {checkpoint.Directory}: {name} was {before} and is now {after}{hint}; resume with the settings and data of the first run, or start afresh in another output folder");
        }
        throw new ArgumentException($"cannot resume from {checkpoint.Directory}: its options hash does not match its recorded settings; the checkpoint state is corrupt");
    }

    private const string CallerPrefix = "TrajectorySettings.";
}
