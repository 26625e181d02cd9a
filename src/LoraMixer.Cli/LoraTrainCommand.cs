using System.CommandLine;
using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using LoraMixer.Training;

namespace LoraMixer.Cli;

/// <summary><c>lora train</c>: fine-tune one LoRA adapter on a JSONL file and save it as a PEFT adapter folder.</summary>
internal static class LoraTrainCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var data = new Option<string>("--data") { Description = "Training data (.jsonl: {\"prompt\",\"response\"} or {\"text\"} per line)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Adapter folder to write (also holds checkpoints/ and train_log.jsonl)", Required = true };
        var rank = new Option<int>("--rank", "-r") { Description = "LoRA rank r", DefaultValueFactory = _ => 8 };
        var alpha = new Option<double>("--alpha") { Description = "lora_alpha (scale alpha/r)", DefaultValueFactory = _ => 16 };
        var targets = new Option<string?>("--targets") { Description = "Comma-separated modules to adapt (default q_proj,k_proj,v_proj,o_proj; in_proj,out_proj for Mamba)" };
        var rslora = new Option<bool>("--rslora") { Description = "Scale by alpha/sqrt(r) (rsLoRA)" };
        var dropout = new Option<double>("--dropout") { Description = "LoRA dropout while training", DefaultValueFactory = _ => 0.05 };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the data", DefaultValueFactory = _ => 2 };
        var maxSteps = new Option<int?>("--max-steps") { Description = "Optimizer steps (overrides --epochs)" };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate", DefaultValueFactory = _ => 2e-4 };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per micro-batch", DefaultValueFactory = _ => 8 };
        var gradAccum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step", DefaultValueFactory = _ => 1 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest sequence in tokens (longer ones are truncated)", DefaultValueFactory = _ => 512 };
        var warmup = new Option<double>("--warmup") { Description = "Warm-up share of the steps", DefaultValueFactory = _ => 0.03 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW weight decay", DefaultValueFactory = _ => 0.0 };
        var evalEvery = new Option<int>("--eval-every") { Description = "Evaluate every N steps (0 = at the end only)", DefaultValueFactory = _ => 0 };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Checkpoint every N steps (0 = at the end only)", DefaultValueFactory = _ => 50 };
        var seed = new Option<int>("--seed") { Description = "Seed of initialisation, data order and dropout", DefaultValueFactory = _ => 0 };
        var resume = new Option<bool>("--resume") { Description = "Continue from the latest checkpoint in --out" };
        var device = CommonOptions.Device();
        var train = new Command("train", "Train a LoRA adapter and save it as a Hugging Face PEFT folder")
        {
            model, data, output, rank, alpha, targets, rslora, dropout, epochs, maxSteps, lr, batchSize, gradAccum, maxLength,
            warmup, weightDecay, evalEvery, checkpointEvery, seed, resume, device,
        };
        train.SetAction(result => CommonOptions.Run(result, () =>
        {
            string modelDir = result.GetValue(model)!;
            string dir = Path.GetFullPath(result.GetValue(output)!);
            int r = result.GetValue(rank);
            if (r < 1) throw new ArgumentException($"--rank must be at least 1, got {r}");
            var config = new LoraConfig
            {
                R = r,
                LoraAlpha = result.GetValue(alpha),
                TargetModules = TrainingInputs.Targets(result.GetValue(targets), modelDir),
                UseRslora = result.GetValue(rslora),
                LoraDropout = result.GetValue(dropout),
                BaseModelNameOrPath = modelDir,
            };
            try
            {
                config.Validate("the LoRA settings");
            }
            catch (Errors.ModelFormatException e)
            {
                throw new ArgumentException(e.Message.Replace("lora_alpha", "--alpha").Replace("lora_dropout", "--dropout"), e);
            }
            var settings = new FineTuneSettings
            {
                MaxLength = result.GetValue(maxLength),
                BatchSize = result.GetValue(batchSize),
                Trainer = new TrainerOptions
                {
                    Epochs = result.GetValue(epochs),
                    MaxSteps = result.GetValue(maxSteps),
                    LearningRate = result.GetValue(lr),
                    GradientAccumulationSteps = result.GetValue(gradAccum),
                    WarmupRatio = result.GetValue(warmup),
                    WeightDecay = result.GetValue(weightDecay),
                    EvalEvery = result.GetValue(evalEvery),
                    CheckpointEvery = result.GetValue(checkpointEvery),
                    Seed = result.GetValue(seed),
                    OutputDir = dir,
                    Resume = result.GetValue(resume),
                    SettingNames = FlagNames,
                },
            };
            settings.Validate();
            OutputFolder.CheckReplaceable(dir, "--out", IsAdapterRun, "a LoRA adapter or training folder");
            using var claim = OutputFolder.ClaimFolder(dir, "--out");
            var records = JsonlDataset.Load(result.GetValue(data)!);
            var tokenizer = TokenizerLoader.Load(modelDir);
            using var lm = ModelLoader.LoadCausalLM(modelDir, CommonOptions.ResolveDevice(result, device));
            string name = Path.GetFileName(dir);

            return OutputFolder.RemoveOnFailure(dir, d => TrainingCheckpoint.AnyIn(d), () =>
            {
                var (adapter, summary) = TrainingDisplay.Run("lora train",
                    (progress, ct) => LoraTrainingJob.Run(lm, tokenizer, records, config, name, settings, progress, ct));
                using (adapter)
                {
                    if (summary.Interrupted) return Interrupted(summary);
                    adapter.Save(dir);
                    Console.WriteLine($"wrote LoRA adapter {dir} ({adapter.Modules.Count} modules, r={config.R}, lora_alpha={config.LoraAlpha}){Describe(summary)}");
                }
                return 0;
            });
        }));
        return new Command("lora", "Train single LoRA adapters") { train };
    }

    /// <summary>The flags behind the settings a resumed run compares, so a refusal names what to change.</summary>
    private static readonly IReadOnlyDictionary<string, string> FlagNames = new Dictionary<string, string>
    {
        ["LearningRate"] = "--lr", ["WeightDecay"] = "--weight-decay", ["WarmupRatio"] = "--warmup", ["Seed"] = "--seed",
        ["GradientAccumulationSteps"] = "--grad-accum", ["TotalSteps"] = "--epochs/--max-steps", ["BatchesPerEpoch"] = "--data/--batch-size",
        ["data"] = "--data", ["batch_size"] = "--batch-size", ["max_length"] = "--max-length", ["r"] = "--rank", ["lora_alpha"] = "--alpha",
        ["lora_dropout"] = "--dropout", ["use_rslora"] = "--rslora", ["targets"] = "--targets",
    };

    /// <summary>Tells the user how a Ctrl+C-stopped run continues; exit code 130 as for SIGINT.</summary>
    internal static int Interrupted(TrainingSummary summary, string? resumeHint = null)
    {
        Console.Error.WriteLine($"stopped at step {summary.Steps}/{summary.TotalSteps}; checkpoint {summary.LastCheckpoint ?? "(none)"}; "
            + (resumeHint ?? "run the same command with --resume to continue"));
        return 130;
    }

    /// <summary>", final loss …, eval_loss …" of a run (empty when nothing ran).</summary>
    internal static string Describe(TrainingSummary summary)
    {
        string text = summary.ResumedFromStep is int from && from == summary.TotalSteps ? "; training had already finished" : "";
        if (summary.FinalLoss is double loss) text += $"; {summary.Steps} steps, final loss {loss:F4}";
        if (summary.FinalEval?.TryGetValue("eval_loss", out double el) == true) text += $", eval_loss {el:F4}";
        return text;
    }

    private static bool IsAdapterRun(string dir) =>
        File.Exists(Path.Combine(dir, LoraConfig.FileName)) || File.Exists(Path.Combine(dir, "train_log.jsonl")) || TrainingCheckpoint.AnyIn(dir);
}
