using System.CommandLine;
using LoraMixer.Data;
using LoraMixer.Evaluation;

namespace LoraMixer.Cli;

/// <summary><c>data prepare</c>: a benchmark split → training JSON Lines with the evaluation prompt and a task label.</summary>
internal static class DataPrepareCommand
{
    public static Command Create()
    {
        var task = new Option<string>("--task") { Description = "gsm8k, sst2, cola, medqa, arc-e or arc-c", Required = true };
        var split = new Option<string>("--split") { Description = "train or test (the evaluation file)", DefaultValueFactory = _ => "train" };
        var dataDir = new Option<string?>("--data-dir") { Description = $"Benchmark folder (default ${EvalDataLocator.EnvironmentVariable})" };
        var output = new Option<string>("--out") { Description = "JSONL file to write", Required = true };
        var limit = new Option<int?>("--limit") { Description = "At most N records (deterministic subset)" };
        var label = new Option<string?>("--label") { Description = "Task label written on every line (default: the task name)" };
        var prepare = new Command("prepare", "Turn a benchmark split into training JSONL ({prompt, response, task}) with the evaluation prompt format")
        {
            task, split, dataDir, output, limit, label,
        };
        prepare.SetAction(result => CommonOptions.Run(result, () =>
        {
            string name = result.GetValue(task)!.ToLowerInvariant();
            var evalTask = name switch
            {
                "gsm8k" => EvalTask.Gsm8k, "sst2" => EvalTask.Sst2, "cola" => EvalTask.Cola, "medqa" => EvalTask.MedQa,
                "arc-e" => EvalTask.ArcEasy, "arc-c" => EvalTask.ArcChallenge,
                "humaneval" => throw new ArgumentException("--task humaneval has no training split (164 test problems only)"),
                _ => throw new ArgumentException($"--task: unknown task '{name}'; known: gsm8k, sst2, cola, medqa, arc-e, arc-c"),
            };
            using var claim = OutputFolder.ClaimFile(result.GetValue(output)!, "--out");
            var locator = EvalDataLocator.Resolve(result.GetValue(dataDir));
            string path = result.GetValue(split) switch
            {
                "train" => locator.TrainPathFor(evalTask)
                    ?? throw new ArgumentException($"no train split for {name}: expected {Path.Combine(locator.Root, EvalDataLocator.TrainRelativePath(evalTask) ?? "?")}"),
                "test" => locator.PathFor(evalTask),
                var other => throw new ArgumentException($"--split must be train or test, got '{other}'"),
            };
            string taskLabel = result.GetValue(label) ?? name;
            var records = BenchmarkRecords.Load(evalTask, path, taskLabel, w => Console.Error.WriteLine("warning: " + w));
            if (result.GetValue(limit) is int n)
                records = EvalSubset.Select(records.Count, n, 1234).Select(i => records[i]).ToArray();
            JsonlDataset.Write(result.GetValue(output)!, records);
            Console.WriteLine($"wrote {records.Count} records of task '{taskLabel}' from {path} to {result.GetValue(output)}");
            return 0;
        }));
        return new Command("data", "Prepare training data") { prepare };
    }
}
