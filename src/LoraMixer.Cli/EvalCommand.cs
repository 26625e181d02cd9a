using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Evaluation;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using Spectre.Console;

namespace LoraMixer.Cli;

/// <summary><c>eval</c>: the paper's benchmarks (lm-evaluation-harness protocols) on a model, an adapter or a mixer.</summary>
internal static class EvalCommand
{
    private static readonly Dictionary<string, EvalTask> TaskNames = new(StringComparer.OrdinalIgnoreCase)
    {
        ["gsm8k"] = EvalTask.Gsm8k, ["humaneval"] = EvalTask.HumanEval, ["sst2"] = EvalTask.Sst2, ["cola"] = EvalTask.Cola,
        ["medqa"] = EvalTask.MedQa, ["arc-e"] = EvalTask.ArcEasy, ["arc-c"] = EvalTask.ArcChallenge,
    };

    public static Command Create()
    {
        var model = CommonOptions.Model();
        var tasks = new Option<string>("--tasks") { Description = $"Comma-separated: {string.Join(",", TaskNames.Keys)}", Required = true };
        var dataDir = new Option<string?>("--data-dir") { Description = $"Benchmark folder (default ${EvalDataLocator.EnvironmentVariable})" };
        var limit = new Option<int?>("--limit") { Description = "Evaluate a deterministic subset of at most N examples per task" };
        var shots = new Option<int>("--shots") { Description = "Few-shot examples (0, 2, 5, 8, ...)", DefaultValueFactory = _ => 0 };
        var batchSize = new Option<int>("--batch-size") { Description = "Sequences per forward pass", DefaultValueFactory = _ => 8 };
        var seed = new Option<int>("--seed") { Description = "Seed of subsets, few-shot draws and the bootstrap", DefaultValueFactory = _ => 1234 };
        var maxNewTokens = new Option<int?>("--max-new-tokens") { Description = "Generation limit (default 256 for GSM8K, 512 for HumanEval)" };
        var allowCode = new Option<bool>("--allow-code-execution") { Description = "Run generated code (HumanEval) with python3 in a separate, time- and memory-limited process" };
        var samples = new Option<int>("--samples") { Description = "HumanEval: completions per problem; n > 1 samples them and reports pass@1/10/100 up to n", DefaultValueFactory = _ => 1 };
        var temperature = new Option<double>("--temperature") { Description = "HumanEval with --samples > 1: sampling temperature", DefaultValueFactory = _ => 0.2 };
        var topP = new Option<double>("--top-p") { Description = "HumanEval with --samples > 1: nucleus threshold", DefaultValueFactory = _ => 0.95 };
        var python = new Option<string>("--python") { Description = "Python interpreter for HumanEval", DefaultValueFactory = _ => "python3" };
        var output = new Option<string?>("--out") { Description = "Write the results as JSON here" };
        var device = CommonOptions.Device();
        var command = new Command("eval", "Evaluate on GSM8K, HumanEval, SST-2, CoLA, MedQA, ARC-E/ARC-C")
        {
            model, tasks, dataDir, limit, shots, batchSize, seed, maxNewTokens, samples, temperature, topP, allowCode, python, output, device,
        };
        var adaptation = new ModelAdaptation();
        foreach (var option in adaptation.Options) command.Add(option);
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            adaptation.Validate(result);
            var selected = result.GetValue(tasks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => TaskNames.TryGetValue(t, out var task) ? task
                    : throw new ArgumentException($"--tasks: unknown task '{t}'; known: {string.Join(", ", TaskNames.Keys)}"))
                .Distinct().ToArray();
            if (selected.Length == 0) throw new ArgumentException("--tasks: name at least one task");
            var options = new EvalOptions
            {
                Limit = result.GetValue(limit),
                Shots = result.GetValue(shots),
                Seed = result.GetValue(seed),
                BatchSize = result.GetValue(batchSize),
                MaxNewTokens = result.GetValue(maxNewTokens),
                Samples = result.GetValue(samples),
                SamplingTemperature = result.GetValue(temperature),
                SamplingTopP = result.GetValue(topP),
                CodeExecution = new CodeExecutionOptions { AllowCodeExecution = result.GetValue(allowCode), PythonExecutable = result.GetValue(python)! },
            };
            options.Validate();
            if (options.Samples > 1 && !selected.Contains(EvalTask.HumanEval))
                throw new ArgumentException("--samples applies to humaneval only (pass@k); add humaneval to --tasks or drop --samples");
            if (selected.Contains(EvalTask.HumanEval) && !options.CodeExecution.AllowCodeExecution)
                throw new ArgumentException("humaneval runs generated code; add --allow-code-execution to permit it (best-effort isolation, not a sandbox)");
            // Checked before the evaluation, so a bad --out never costs the results.
            string? outPath = result.GetValue(output) is string o ? Path.GetFullPath(o) : null;
            using var claim = outPath is null ? null : OutputFolder.ClaimFile(outPath, "--out");
            var locator = EvalDataLocator.Resolve(result.GetValue(dataDir));
            var evaluators = selected.Select(t => TaskEvaluators.Create(t, locator, m => Console.Error.WriteLine("warning: " + m))).ToArray();

            string dir = result.GetValue(model)!;
            using var lm = ModelLoader.LoadCausalLM(dir, CommonOptions.ResolveDevice(result, device));
            using var adapted = adaptation.Apply(result, lm);
            if (adapted is Mixing.LoraMixerModel mixer) options = options with { PromptEnds = mixer.SetDecisionPositions };
            var tokenizer = TokenizerLoader.Load(dir);
            var results = new List<EvalResult>();
            foreach (var evaluator in evaluators)
            {
                EvalResult? r = null;
                AnsiConsole.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var bar = ctx.AddTask(evaluator.Task, maxValue: 1);
                        r = evaluator.Evaluate(lm, tokenizer, options, new SyncProgress<(int Done, int Total)>(p =>
                        {
                            bar.MaxValue = Math.Max(1, p.Total);
                            bar.Value = p.Done;
                        }));
                    });
                results.Add(r!);
                Console.WriteLine(Describe(r!));
            }
            if (outPath is not null)
            {
                var json = new JsonObject
                {
                    ["model"] = dir,
                    ["adapter"] = result.GetValue<string?>("--adapter"),
                    ["mixer"] = result.GetValue<string?>("--mixer"),
                    ["shots"] = options.Shots,
                    ["limit"] = options.Limit,
                    ["seed"] = options.Seed,
                    ["results"] = new JsonArray(results.Select(ToJson).ToArray()),
                };
                OutputFolder.WriteText(outPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                Console.WriteLine($"wrote {outPath}");
            }
            return 0;
        }));
        return command;
    }

    private static string Describe(EvalResult r) =>
        $"{r.Task} (n={r.N}, {r.Shots}-shot, {r.TemplateId}): " + string.Join(", ", r.Metrics.Select(m =>
            string.Create(CultureInfo.InvariantCulture, $"{m.Name} {m.Value:F4} [{m.Ci95.Lower:F4}, {m.Ci95.Upper:F4}]")))
        + string.Create(CultureInfo.InvariantCulture, $"; {r.Seconds:F1} s, {r.TokensPerSecond:F0} tok/s")
        + (r.Samples > 1 ? $"; {r.Samples} samples per problem" : "")
        + (r.TruncatedPrompts > 0 ? $"; {r.TruncatedPrompts} prompts cut from the left to fit the model's window" : "");

    private static JsonNode ToJson(EvalResult r) => new JsonObject
    {
        ["task"] = r.Task,
        ["n"] = r.N,
        ["template"] = r.TemplateId,
        ["shots"] = r.Shots,
        ["seconds"] = Math.Round(r.Seconds, 2),
        ["tokens_per_s"] = Math.Round(r.TokensPerSecond, 1),
        ["samples"] = r.Samples,
        ["truncated_prompts"] = r.TruncatedPrompts,
        ["metrics"] = new JsonArray(r.Metrics.Select(m => (JsonNode)new JsonObject
        {
            ["name"] = m.Name, ["value"] = m.Value, ["ci95"] = new JsonArray(m.Ci95.Lower, m.Ci95.Upper),
        }).ToArray()),
    };
}
