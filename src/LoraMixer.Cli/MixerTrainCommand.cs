using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Tokenization;
using LoraMixer.Training;

namespace LoraMixer.Cli;

/// <summary>
/// <c>mixer train</c>: a LoRA-Mixer in one of the two paradigms (docs/method.md §6). Joint (<c>--tasks</c>):
/// stage 1 trains one expert per task with hard routing, stage 2 the routers. Plug-and-play
/// (<c>--experts</c>): existing PEFT adapters, frozen; only stage 2. Resumable stages live in <c>DIR-training/</c>.
/// </summary>
internal static class MixerTrainCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var data = new Option<string>("--data") { Description = "Training data (.jsonl with a \"task\" per line for joint training)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Mixer folder to write; resumable work goes to <out>-training/", Required = true };
        var tasks = new Option<string?>("--tasks") { Description = "Joint paradigm: comma-separated tasks, one expert each (default: the tasks in the data)" };
        var experts = new Option<string?>("--experts") { Description = "Plug-and-play paradigm: name=ADAPTER_DIR,... (existing PEFT LoRA adapters, frozen)" };
        var stage1Samples = new Option<int>("--stage1-samples") { Description = "Joint: most records for stage 1 (mixed over tasks)", DefaultValueFactory = _ => 40000 };
        var stage2Samples = new Option<int>("--stage2-samples") { Description = "Most records for stage 2 (mixed over tasks)", DefaultValueFactory = _ => 2000 };
        var rank = new Option<int>("--rank", "-r") { Description = "Joint: expert LoRA rank", DefaultValueFactory = _ => 8 };
        var alpha = new Option<double>("--alpha") { Description = "Joint: expert lora_alpha", DefaultValueFactory = _ => 16 };
        var dropout = new Option<double>("--dropout") { Description = "Joint: expert LoRA dropout in stage 1", DefaultValueFactory = _ => 0.05 };
        var stage1Epochs = new Option<int>("--stage1-epochs") { Description = "Joint: stage 1 passes over its records", DefaultValueFactory = _ => 1 };
        var stage1Lr = new Option<double>("--stage1-lr") { Description = "Joint: stage 1 peak learning rate", DefaultValueFactory = _ => 2e-4 };
        var topK = new Option<int>("--top-k") { Description = "Experts per token at inference (and in straight-through training)", DefaultValueFactory = _ => RoutingSettings.DefaultTopK };
        var scope = new Option<string>("--router-scope") { Description = "One router per block (serial attention routing) or per projection", DefaultValueFactory = _ => "block" };
        scope.AcceptOnlyFromAmong("block", "projection");
        var targets = new Option<string?>("--targets") { Description = "Comma-separated projections that carry experts (joint default q_proj,k_proj,v_proj,o_proj, in_proj,out_proj for Mamba; plug-and-play default: every module the adapters adapt)" };
        var temperature = new Option<double>("--temperature") { Description = "Router softmax temperature τ", DefaultValueFactory = _ => 1.0 };
        var rslAlpha = new Option<double>("--rsl-alpha") { Description = "RSL balance weight α", DefaultValueFactory = _ => 0.01 };
        var rslLambda = new Option<double>("--rsl-lambda") { Description = "RSL entropy weight λ", DefaultValueFactory = _ => 0.01 };
        var entropySign = new Option<int>("--entropy-sign") { Description = "+1 penalises routing entropy (sharp routing), -1 rewards it (the paper's equation)", DefaultValueFactory = _ => 1 };
        var rslWarmup = new Option<double>("--rsl-warmup") { Description = "Share of stage 2 over which λ ramps up from 0", DefaultValueFactory = _ => 0.1 };
        var beta = new Option<double>("--beta") { Description = "Joint: > 0 also trains the experts in stage 2, held near stage 1 by this preservation weight", DefaultValueFactory = _ => 0.0 };
        var stage2Epochs = new Option<int>("--stage2-epochs") { Description = "Stage 2 passes over its records", DefaultValueFactory = _ => 1 };
        var stage2Lr = new Option<double?>("--stage2-lr") { Description = "Stage 2 peak learning rate (default: the preset's, 1e-2; paper 1e-3)" };
        var router = RouterOptions.Create();
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per batch", DefaultValueFactory = _ => 8 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest sequence in tokens", DefaultValueFactory = _ => 512 };
        var seed = new Option<int>("--seed") { Description = "Seed of sampling, initialisation and data order", DefaultValueFactory = _ => 0 };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Checkpoint every N steps (0 = at the end of a stage only)", DefaultValueFactory = _ => 50 };
        var resume = new Option<bool>("--resume") { Description = "Continue from <out>-training/ (a finished stage 1 is skipped)" };
        var device = CommonOptions.Device();
        var command = new Command("train", "Train a LoRA-Mixer: joint (--tasks) or plug-and-play over existing adapters (--experts)")
        {
            model, data, output, tasks, experts, stage1Samples, stage2Samples, rank, alpha, dropout, stage1Epochs, stage1Lr,
            topK, scope, targets, temperature, rslAlpha, rslLambda, entropySign, rslWarmup, beta, stage2Epochs, stage2Lr,
            batchSize, maxLength, seed, checkpointEvery, resume, device,
        };
        router.AddTo(command);
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            string modelDir = result.GetValue(model)!;
            string dataPath = result.GetValue(data)!;
            string outDir = Path.GetFullPath(result.GetValue(output)!);
            string work = outDir + "-training";
            string? taskOption = result.GetValue(tasks), expertOption = result.GetValue(experts);
            if (taskOption is not null && expertOption is not null)
                throw new ArgumentException("give --tasks (joint training of new experts) or --experts (plug-and-play over existing adapters), not both");
            bool joint = expertOption is null;
            int k = result.GetValue(topK), seedValue = result.GetValue(seed);
            double betaValue = result.GetValue(beta);
            // Plug-and-play covers every projection its adapters adapt unless --targets narrows it.
            IReadOnlyList<string>? targetList = result.GetValue(targets) is null && !joint ? null : TrainingInputs.Targets(result.GetValue(targets), modelDir);
            var preset = router.Resolve(result);
            IReadOnlyList<string>? taskList = taskOption is null ? null : TrainingInputs.List(taskOption, "--tasks");
            var records = JsonlDataset.Load(dataPath, requireTask: joint, knownTasks: taskList?.ToArray());
            // Sequence routing decides at the end of the prompt; the preset falls back to per-token routing for
            // data without prompts, an explicit --routing-granularity sequence does not (training names the line).
            if (preset.Granularity == RoutingGranularity.Sequence && !router.GranularityGiven(result) && records.Any(r => string.IsNullOrEmpty(r.Prompt)))
            {
                Console.WriteLine($"routing granularity: token (lines of {dataPath} without a \"prompt\" give sequence routing no place to decide)");
                preset = preset with { Granularity = RoutingGranularity.Token };
            }
            var rsl = new RoutingLossSettings(result.GetValue(rslAlpha), result.GetValue(rslLambda), result.GetValue(entropySign),
                result.GetValue(rslWarmup), betaValue, preset.Supervision);
            int samples1 = result.GetValue(stage1Samples), samples2 = result.GetValue(stage2Samples);
            if (joint && samples1 < 1) throw new ArgumentException($"--stage1-samples must be at least 1, got {samples1}");
            if (samples2 < 1) throw new ArgumentException($"--stage2-samples must be at least 1, got {samples2}");
            double tau = result.GetValue(temperature);

            FineTuneSettings Stage(int epochs, double lr, string folder) => new()
            {
                MaxLength = result.GetValue(maxLength),
                BatchSize = result.GetValue(batchSize),
                Trainer = new TrainerOptions
                {
                    Epochs = epochs,
                    LearningRate = lr,
                    CheckpointEvery = result.GetValue(checkpointEvery),
                    Seed = seedValue,
                    OutputDir = Path.Combine(work, folder),
                    Resume = result.GetValue(resume),
                },
            };
            var stage1Settings = Stage(result.GetValue(stage1Epochs), result.GetValue(stage1Lr), "stage1");
            var stage2Settings = Stage(result.GetValue(stage2Epochs), result.GetValue(stage2Lr) ?? preset.Stage2LearningRate, "stage2");
            if (joint) stage1Settings.Validate();

            LoraConfig? expertConfig = null;
            if (joint)
            {
                int r = result.GetValue(rank);
                if (r < 1) throw new ArgumentException($"--rank must be at least 1, got {r}");
                expertConfig = new LoraConfig
                {
                    R = r,
                    LoraAlpha = result.GetValue(alpha),
                    TargetModules = targetList!,
                    LoraDropout = result.GetValue(dropout),
                    BaseModelNameOrPath = modelDir,
                };
                try
                {
                    expertConfig.Validate("the expert settings");
                }
                catch (Errors.ModelFormatException e)
                {
                    throw new ArgumentException(e.Message.Replace("lora_alpha", "--alpha").Replace("lora_dropout", "--dropout"), e);
                }
            }

            // Experts: the tasks (joint) or the given adapters (plug-and-play); checked before any work starts.
            IReadOnlyList<string> dataTasks = TrainingInputs.TasksOf(records);
            IReadOnlyList<(string Name, string Path)> adapterPaths = joint ? [] : ParseExperts(expertOption!);
            IReadOnlyList<string> expertNames;
            if (joint)
            {
                if (taskList is not null)
                    foreach (string t in taskList.Where(t => !dataTasks.Contains(t)))
                        throw new ArgumentException($"--tasks: task \"{t}\" has no records in {dataPath}; tasks in the data: {string.Join(", ", dataTasks)}");
                expertNames = taskList ?? dataTasks;
                foreach (string t in expertNames) TrainingInputs.CheckExpertName(t, "task");
            }
            else
            {
                expertNames = adapterPaths.Select(e => e.Name).ToArray();
            }
            var stage2 = new RouterTraining
            {
                Preset = preset,
                Loss = rsl,
                Training = stage2Settings,
                TopK = k,
                Temperature = tau,
                Scope = result.GetValue(scope) == "projection" ? RouterScope.Projection : RouterScope.Block,
            };
            stage2.Validate(expertNames.Count);
            OutputFolder.CheckReplaceable(outDir, "--out", d => File.Exists(Path.Combine(d, "mixer_config.json")), "a LoRA-Mixer folder");
            using var claim = OutputFolder.ClaimFolder(outDir, "--out");

            var tokenizer = TokenizerLoader.Load(modelDir);
            var torchDevice = CommonOptions.ResolveDevice(result, device);
            var stage2Tasks = joint ? expertNames : dataTasks;
            // Supervision needs tasks that name experts; the preset's weight applies only then, an explicit flag always.
            if (rsl.Supervision > 0 && !router.SupervisionGiven(result) && !stage2Tasks.Any(expertNames.Contains))
            {
                Console.WriteLine($"router supervision: off (no \"task\" in {dataPath} names an expert: {string.Join(", ", expertNames)})");
                stage2 = stage2 with { Loss = rsl with { Supervision = 0 } };
            }
            var stage2Records = TrainingInputs.MixedSample(records, samples2, seedValue + 1);
            var pipeline = new MixerPipeline(modelDir, tokenizer, torchDevice, (title, work) => TrainingDisplay.Run(title, work),
                line => Console.WriteLine(line), FlagNames);

            return OutputFolder.RemoveOnFailure(work, HasResumableState, () =>
            {
                string stage1Dir = Path.Combine(work, "stage1-mixer");
                if (joint)
                {
                    var stage1Records = TrainingInputs.MixedSample(records, samples1, seedValue);
                    var summary = pipeline.TrainExperts(stage1Records, expertNames, new ExpertTraining { Expert = expertConfig!, Training = stage1Settings }, stage1Dir);
                    if (summary is { Interrupted: true }) return LoraTrainCommand.Interrupted(summary);
                    if (summary is not null)
                        Console.WriteLine($"stage 1: experts {string.Join(", ", expertNames)} trained on {stage1Records.Count} records{LoraTrainCommand.Describe(summary)}");
                }
                var experts = joint ? ExpertSource.Mixer(stage1Dir) : ExpertSource.FromAdapters(adapterPaths, targetList);
                var settingsRecord = new JsonObject { ["data_file"] = Path.GetFullPath(dataPath) };
                using var trained = pipeline.TrainRouters(joint ? Paradigm.Joint : Paradigm.PlugAndPlay, experts, stage2Records, stage2Tasks, stage2, outDir, settingsRecord);
                if (trained.Summary.Interrupted) return LoraTrainCommand.Interrupted(trained.Summary);
                // After the save: Save replaces the whole folder.
                OutputFolder.WriteText(Path.Combine(outDir, "routing_stats.json"),
                    trained.Statistics.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                Console.WriteLine($"stage 2: routers trained on {stage2Records.Count} records{LoraTrainCommand.Describe(trained.Summary)}");
                RoutingReport.Write(trained.Statistics, taskMatrix: false);
                Console.WriteLine($"wrote LoRA-Mixer {outDir} ({expertNames.Count} experts: {string.Join(", ", expertNames)}; top-k {k}; routing statistics in routing_stats.json)");
                return 0;
            });
        }));
        return command;
    }

    /// <summary>The flags behind the settings a resumed run compares, so a refusal names what to change.</summary>
    private static readonly IReadOnlyDictionary<string, string> FlagNames = new Dictionary<string, string>
    {
        ["data"] = "--data", ["tasks"] = "--tasks", ["samples"] = "--stage1-samples", ["batch_size"] = "--batch-size",
        ["max_length"] = "--max-length", ["Seed"] = "--seed", ["seed"] = "--seed", ["r"] = "--rank", ["lora_alpha"] = "--alpha",
        ["lora_dropout"] = "--dropout", ["targets"] = "--targets", ["router_scope"] = "--router-scope", ["top_k"] = "--top-k",
        ["temperature"] = "--temperature", ["routing"] = "--routing", ["router_supervision"] = "--router-supervision",
        ["router_input"] = "--router-input", ["router_input_norm"] = "--router-input-norm", ["routing_granularity"] = "--routing-granularity",
        ["rsl"] = "--rsl-alpha/--rsl-lambda/--entropy-sign/--rsl-warmup/--beta", ["experts"] = "--experts (the adapters' weights)",
        ["stage1.epochs"] = "--stage1-epochs", ["stage1.lr"] = "--stage1-lr", ["stage1.LearningRate"] = "--stage1-lr",
        ["stage1.TotalSteps"] = "--stage1-epochs", ["stage1.BatchesPerEpoch"] = "--data/--stage1-samples/--batch-size",
        ["stage2.LearningRate"] = "--stage2-lr", ["stage2.TotalSteps"] = "--stage2-epochs", ["stage2.BatchesPerEpoch"] = "--data/--stage2-samples/--batch-size",
        ["stage2.data"] = "--data/--stage2-samples", ["stage2.stage"] = "--beta",
    };

    /// <summary><c>name=DIR,name2=DIR2</c>; a bare <c>DIR</c> is named after its folder.</summary>
    private static IReadOnlyList<(string Name, string Path)> ParseExperts(string value)
    {
        var experts = new List<(string Name, string Path)>();
        foreach (string item in value.Split(',', StringSplitOptions.TrimEntries))
        {
            if (item.Length == 0) throw new ArgumentException($"--experts '{value}' has an empty item; write name=ADAPTER_DIR,name2=ADAPTER_DIR2");
            int eq = item.IndexOf('=');
            string path = eq < 0 ? item : item[(eq + 1)..].Trim();
            string name = eq < 0 ? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(item))) : item[..eq].Trim();
            if (path.Length == 0) throw new ArgumentException($"--experts: '{item}' gives no adapter folder; write {name}=ADAPTER_DIR");
            TrainingInputs.CheckExpertName(name, "--experts name");
            if (experts.Any(e => e.Name == name)) throw new ArgumentException($"--experts names '{name}' twice; give every expert its own name");
            experts.Add((name, path));
        }
        return experts;
    }

    private static bool HasResumableState(string work) =>
        Directory.Exists(Path.Combine(work, "stage1-mixer"))
        || TrainingCheckpoint.AnyIn(Path.Combine(work, "stage1"))
        || TrainingCheckpoint.AnyIn(Path.Combine(work, "stage2"));
}
