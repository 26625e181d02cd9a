using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
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
        var topK = new Option<int>("--top-k") { Description = "Experts per token at inference (and in straight-through training)", DefaultValueFactory = _ => 2 };
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
            if (!joint && betaValue > 0)
                throw new ArgumentException("--beta trains the experts in stage 2, which only joint training does; plug-and-play experts stay frozen (drop --beta)");
            var targetList = TrainingInputs.Targets(result.GetValue(targets), modelDir);
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
            rsl.Validate();
            int samples1 = result.GetValue(stage1Samples), samples2 = result.GetValue(stage2Samples);
            if (joint && samples1 < 1) throw new ArgumentException($"--stage1-samples must be at least 1, got {samples1}");
            if (samples2 < 1) throw new ArgumentException($"--stage2-samples must be at least 1, got {samples2}");
            var routingMode = preset.Stage2Routing;
            var routerScope = result.GetValue(scope) == "projection" ? RouterScope.Projection : RouterScope.Block;
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
            stage2Settings.Validate();

            LoraConfig? expertConfig = null;
            if (joint)
            {
                int r = result.GetValue(rank);
                if (r < 1) throw new ArgumentException($"--rank must be at least 1, got {r}");
                expertConfig = new LoraConfig
                {
                    R = r,
                    LoraAlpha = result.GetValue(alpha),
                    TargetModules = targetList,
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
            if (k < 1 || k > expertNames.Count)
                throw new ArgumentException($"--top-k {k} must be between 1 and the number of experts ({expertNames.Count}: {string.Join(", ", expertNames)})");
            var stage2Routing = new RoutingSettings(routingMode, k, Renormalize: true, Temperature: tau);
            stage2Routing.Validate(expertNames.Count);
            OutputFolder.CheckReplaceable(outDir, "--out", d => File.Exists(Path.Combine(d, "mixer_config.json")), "a LoRA-Mixer folder");

            var tokenizer = TokenizerLoader.Load(modelDir);
            var torchDevice = CommonOptions.ResolveDevice(result, device);
            var mixerConfig = new MixerConfig
            {
                BaseModel = Path.GetFullPath(modelDir),
                Architecture = "",
                HiddenSize = 0,
                NumHiddenLayers = 0,
                Targets = targetList,
                RouterScope = routerScope,
                TopK = k,
                Renormalize = true,
                RouterTemperature = tau,
                RouterInput = preset.Input,
                RouterInputNorm = preset.InputNorm,
                RoutingGranularity = preset.Granularity,
                Experts = expertNames.Select(n => new MixerExpert(n, "experts/" + n)).ToArray(),
            };
            var stage2Tasks = joint ? expertNames : dataTasks;
            // Supervision needs tasks that name experts; the preset's weight applies only then, an explicit flag always.
            if (rsl.Supervision > 0 && !router.SupervisionGiven(result) && !stage2Tasks.Any(expertNames.Contains))
            {
                Console.WriteLine($"router supervision: off (no \"task\" in {dataPath} names an expert: {string.Join(", ", expertNames)})");
                rsl = rsl with { Supervision = 0 };
            }
            var stage2Records = TrainingInputs.MixedSample(records, samples2, seedValue + 1);
            var settingsRecord = new JsonObject
            {
                ["paradigm"] = joint ? "joint" : "plug_and_play",
                ["data"] = Path.GetFullPath(dataPath),
                ["seed"] = seedValue,
                ["batch_size"] = stage2Settings.BatchSize,
                ["max_length"] = stage2Settings.MaxLength,
            };

            return OutputFolder.RemoveOnFailure(work, HasResumableState, () =>
            {
                ICausalLM? lm = null;
                LoraMixerModel? mixer = null;
                try
                {
                    if (joint)
                    {
                        string stage1Dir = Path.Combine(work, "stage1-mixer");
                        if (result.GetValue(resume) && File.Exists(Path.Combine(stage1Dir, "mixer_config.json")))
                        {
                            Console.WriteLine($"stage 1: already finished ({stage1Dir}); skipping to stage 2");
                        }
                        else
                        {
                            var stage1Records = TrainingInputs.MixedSample(records, samples1, seedValue);
                            using var baseModel = ModelLoader.LoadCausalLM(modelDir, torchDevice);
                            var (trained, summary) = TrainingDisplay.Run("stage 1 (experts)", (progress, ct) =>
                                MixerTrainingJob.TrainExperts(baseModel, tokenizer, stage1Records, expertNames, expertConfig!,
                                    WithBase(mixerConfig, baseModel), stage1Settings, progress, ct));
                            using (trained)
                            {
                                if (summary.Interrupted) return LoraTrainCommand.Interrupted(summary);
                                trained.SetTrainingRecord(new JsonObject
                                {
                                    ["stage1"] = new JsonObject
                                    {
                                        ["samples"] = stage1Records.Count,
                                        ["epochs"] = stage1Settings.Trainer.Epochs,
                                        ["lr"] = stage1Settings.Trainer.LearningRate,
                                        ["r"] = expertConfig!.R,
                                        ["lora_alpha"] = expertConfig.LoraAlpha,
                                        ["lora_dropout"] = expertConfig.LoraDropout,
                                        ["steps"] = summary.Steps,
                                        ["final_loss"] = summary.FinalLoss,
                                    },
                                });
                                MixerCheckpoint.Save(trained, stage1Dir);
                            }
                            Console.WriteLine($"stage 1: experts {string.Join(", ", expertNames)} trained on {stage1Records.Count} records{LoraTrainCommand.Describe(summary)}");
                        }
                        // Stage 2 always starts from the saved stage-1 mixer, so a resumed run continues exactly as an uninterrupted one.
                        lm = ModelLoader.LoadCausalLM(modelDir, torchDevice);
                        mixer = MixerCheckpoint.Load(lm, stage1Dir, c => c with { RouterInput = preset.Input, RouterInputNorm = preset.InputNorm, RoutingGranularity = preset.Granularity });
                    }
                    else
                    {
                        var adapters = new List<PeftAdapter>();
                        try
                        {
                            foreach (var (name, path) in adapterPaths) adapters.Add(PeftAdapter.Load(path, name));
                            lm = ModelLoader.LoadCausalLM(modelDir, torchDevice);
                            // Plug-and-play covers the union of the adapters' modules; an explicit --targets that leaves some out says which.
                            var chosen = PlugAndPlayTargets.Select(lm, adapters, result.GetValue(targets) is null ? null : targetList);
                            if (chosen.DroppedSummary is string dropped) Console.WriteLine(dropped);
                            mixer = MixerCheckpoint.FromAdapters(lm, WithBase(mixerConfig, lm) with { Targets = chosen.Targets }, adapters);
                        }
                        finally
                        {
                            foreach (var a in adapters) a.Dispose();
                        }
                    }

                    var (summary2, statistics) = TrainingDisplay.Run("stage 2 (routers)", (progress, ct) =>
                        MixerTrainingJob.TrainRouters(mixer, tokenizer, stage2Records, stage2Tasks, stage2Routing, rsl,
                            trainExperts: joint && rsl.Beta > 0, stage2Settings, progress, ct));
                    if (summary2.Interrupted) return LoraTrainCommand.Interrupted(summary2);

                    var record = (JsonObject)settingsRecord.DeepClone();
                    foreach (var (key, value) in mixer.Config.Training) record[key] = value?.DeepClone();
                    if (!joint)
                        record["experts"] = new JsonObject(adapterPaths.Select(e =>
                            KeyValuePair.Create(e.Name, (JsonNode?)JsonValue.Create(Path.GetFullPath(e.Path)))));
                    record["stage2"] = new JsonObject
                    {
                        ["samples"] = stage2Records.Count,
                        ["epochs"] = stage2Settings.Trainer.Epochs,
                        ["lr"] = stage2Settings.Trainer.LearningRate,
                        ["routing"] = routingMode == RoutingMode.Soft ? "soft" : "straight_through",
                        ["top_k"] = k,
                        ["temperature"] = tau,
                        ["rsl_alpha"] = rsl.Alpha,
                        ["rsl_lambda"] = rsl.Lambda,
                        ["entropy_sign"] = rsl.EntropySign,
                        ["rsl_warmup"] = rsl.WarmupRatio,
                        ["beta"] = rsl.Beta,
                        ["preset"] = preset.Name,
                        ["router_input"] = RouterPreset.Spell(preset.Input),
                        ["router_input_norm"] = RouterPreset.Spell(preset.InputNorm),
                        ["routing_granularity"] = RouterPreset.Spell(preset.Granularity),
                        ["router_supervision"] = rsl.Supervision,
                        ["train_experts"] = joint && rsl.Beta > 0,
                        ["steps"] = summary2.Steps,
                        ["final_loss"] = summary2.FinalLoss,
                    };
                    mixer.SetTrainingRecord(record);
                    MixerCheckpoint.Save(mixer, outDir);
                    // After the save: Save replaces the whole folder.
                    OutputFolder.WriteText(Path.Combine(outDir, "routing_stats.json"),
                        statistics.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

                    Console.WriteLine($"stage 2: routers trained on {stage2Records.Count} records{LoraTrainCommand.Describe(summary2)}");
                    RoutingReport.Write(statistics, taskMatrix: false);
                    Console.WriteLine($"wrote LoRA-Mixer {outDir} ({expertNames.Count} experts: {string.Join(", ", expertNames)}; top-k {k}; routing statistics in routing_stats.json)");
                    return 0;
                }
                finally
                {
                    mixer?.Dispose();
                    lm?.Dispose();
                }
            });
        }));
        return command;
    }

    private static MixerConfig WithBase(MixerConfig config, ICausalLM model) => config with
    {
        Architecture = ModelStructure.Describe(model).Architecture,
        HiddenSize = ModelStructure.Describe(model).HiddenSize,
        NumHiddenLayers = ModelStructure.Describe(model).Layers,
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
