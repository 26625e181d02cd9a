using System.CommandLine;
using LoraMixer.Demo;
using LoraMixer.Training;

namespace LoraMixer.Cli;

/// <summary><c>pretrain</c>: pretrain the embedded default model (the demo's base) into a model folder.</summary>
internal static class PretrainCommand
{
    public static Command Create()
    {
        var defaults = new PretrainSettings();
        var output = new Option<string>("--out", "-o") { Description = "Model folder to write (replaced if it holds a model)", Required = true };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps", DefaultValueFactory = _ => defaults.Steps };
        var documents = new Option<int>("--documents") { Description = "Corpus documents to generate", DefaultValueFactory = _ => defaults.Documents };
        var batchSize = new Option<int>("--batch-size") { Description = "Documents per step", DefaultValueFactory = _ => defaults.BatchSize };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate (warm-up, then cosine)", DefaultValueFactory = _ => defaults.LearningRate };
        var seed = new Option<int>("--seed") { Description = "Seed of the corpus, initialisation and data order", DefaultValueFactory = _ => defaults.Seed };
        var arch = new Option<string>("--arch") { Description = "llama or mamba", DefaultValueFactory = _ => "llama" };
        arch.AcceptOnlyFromAmong("llama", "mamba");
        var device = CommonOptions.Device();
        var command = new Command("pretrain", "Pretrain the embedded default model (a tiny character-level Llama or Mamba; no download)")
        {
            output, steps, documents, batchSize, lr, seed, arch, device,
        };
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            string dir = Path.GetFullPath(result.GetValue(output)!);
            var settings = new PretrainSettings
            {
                Steps = result.GetValue(steps),
                Documents = result.GetValue(documents),
                BatchSize = result.GetValue(batchSize),
                LearningRate = result.GetValue(lr),
                Seed = result.GetValue(seed),
                Arch = result.GetValue(arch)!,
                Device = CommonOptions.ResolveDevice(result, device),
            };
            if (settings.Steps < 1) throw new ArgumentException($"--steps must be at least 1, got {settings.Steps}");
            if (settings.Documents < 2) throw new ArgumentException($"--documents must be at least 2, got {settings.Documents}");
            if (settings.BatchSize < 1) throw new ArgumentException($"--batch-size must be at least 1, got {settings.BatchSize}");
            if (!(settings.LearningRate > 0) || double.IsInfinity(settings.LearningRate))
                throw new ArgumentException($"--lr must be a positive number, got {settings.LearningRate}");
            OutputFolder.CheckReplaceable(dir, "--out", DefaultModel.Exists, "a model folder");
            using var claim = OutputFolder.ClaimFolder(dir, "--out");

            TrainingSummary summary = TrainingDisplay.Run("pretrain", (progress, ct) => DefaultModel.Pretrain(dir, settings, progress, ct));
            if (summary.Interrupted)
            {
                Console.Error.WriteLine($"pretrain: stopped at step {summary.Steps}/{summary.TotalSteps}; nothing was written (run it again to pretrain)");
                return 130;
            }
            string eval = summary.FinalEval?.TryGetValue("eval_loss", out double el) == true ? $", eval_loss {el:F4}" : "";
            Console.WriteLine($"wrote the default model to {dir} ({summary.Steps} steps{eval})");
            return 0;
        }));
        return command;
    }
}
