using System.Diagnostics;
using System.Text.Json.Nodes;
using LoraMixer.Data;
using LoraMixer.Generation;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Demo;

/// <summary>Runs a training stage under the caller's progress display.</summary>
public delegate TrainingSummary TrainingHost(string title, Func<IProgress<TrainingProgress>, CancellationToken, TrainingSummary> work);

/// <summary>
/// The README's main job: on the built-in multi-task suite and the embedded default model, trains one
/// expert per task (stage 1, hard routing), a multi-task LoRA with the same parameter budget, and the
/// routers of two LoRA-Mixers (stage 2 with RSL: plug-and-play over the frozen experts, and joint with the
/// experts fine-tuned under preservation), then evaluates every method on held-out items of every task.
/// </summary>
public static class DemoRunner
{
    /// <summary>Method names in table order.</summary>
    public static readonly IReadOnlyList<string> MethodNames = new[]
    {
        "base model", "single-task LoRA (oracle)", "multi-task LoRA", "uniform merge", "LoRAHub", "MoLE",
        "LoRA-Mixer (joint)", "LoRA-Mixer (plug-and-play)", "LoRA-Mixer (plug-and-play, paper's router)",
    };

    /// <summary>Runs the demo; <paramref name="log"/> receives one line per phase.</summary>
    public static DemoResult Run(DemoOptions options, TrainingHost host, Action<string> log)
    {
        var clock = Stopwatch.StartNew();
        string outDir = Path.GetFullPath(options.OutputDir);
        string trainingDir = Path.Combine(outDir, "training");
        if (Directory.Exists(trainingDir)) Directory.Delete(trainingDir, recursive: true); // the demo always trains afresh
        Directory.CreateDirectory(outDir);
        var device = options.Device ?? CPU;

        string baseDir = options.BaseModelDir ?? DefaultModel.CacheDir(options.Arch);
        if (!DefaultModel.Exists(baseDir))
        {
            log($"pretraining the default model into {baseDir} (first run only)");
            var pre = host("pretrain", (p, ct) => DefaultModel.Pretrain(baseDir, options.Pretrain with { Device = device, Arch = options.Arch }, p, ct));
            if (pre.Interrupted) throw new OperationCanceledException("pretraining was interrupted; run the demo again to start over");
        }
        else log($"base model: {baseDir}");
        var tokenizer = TokenizerLoader.Load(baseDir);
        string architecture;
        using (var peek = ModelLoader.LoadCausalLM(baseDir, device)) architecture = ModelStructure.Describe(peek).Architecture;
        log($"architecture: {architecture}");

        var tasks = DemoSuite.Tasks.Select(t => t.Name).ToArray();
        var train = new List<DemoItem>();
        var tests = new Dictionary<string, IReadOnlyList<DemoItem>>();
        foreach (var task in tasks)
        {
            var (tr, te) = DemoSuite.GenerateSplit(task, options.TrainPerTask, options.TestPerTask, options.Seed);
            train.AddRange(tr);
            tests[task] = te;
        }
        var rng = new Random(options.Seed);
        var trainRecords = train.OrderBy(_ => rng.Next()).Select(DemoSuite.ToRecord).ToArray();
        var stage2Records = trainRecords.OrderBy(_ => rng.Next()).Take(options.Stage2Samples).ToArray();
        log($"suite: {tasks.Length} tasks ({string.Join(", ", tasks)}), {options.TrainPerTask} training and {options.TestPerTask} test items each");
        // The suite as JSONL, so that every method can be rerun from the command line (lora train, mixer train, mixer diagnose).
        Directory.CreateDirectory(Path.Combine(outDir, "data"));
        JsonlDataset.Write(Path.Combine(outDir, "data", "train.jsonl"), trainRecords);
        JsonlDataset.Write(Path.Combine(outDir, "data", "test.jsonl"), tests.Values.SelectMany(items => items).Select(DemoSuite.ToRecord).ToArray());

        var results = new List<DemoMethodResult>();
        var routing = new Dictionary<string, RoutingStatistics>();
        var logs = new Dictionary<string, string>();
        var expertConfig = new LoraConfig
        {
            R = options.Rank, LoraAlpha = 2 * options.Rank,
            TargetModules = options.Arch == "mamba" ? TargetLinears.MambaProjections : TargetLinears.AttentionProjections,
            BaseModelNameOrPath = baseDir, LoraDropout = 0.0,
        };
        MixerConfig MixerConfigFor(ICausalLM m) => new()
        {
            BaseModel = baseDir,
            Architecture = ModelStructure.Describe(m).Architecture,
            HiddenSize = ModelStructure.Describe(m).HiddenSize,
            NumHiddenLayers = ModelStructure.Describe(m).Layers,
            Targets = expertConfig.TargetModules,
            TopK = Math.Min(options.TopK, tasks.Length),
            Experts = tasks.Select(t => new MixerExpert(t, "experts/" + t)).ToArray(),
        };
        FineTuneSettings Settings(string stage, int steps, double lr) => new()
        {
            MaxLength = 64,
            BatchSize = options.BatchSize,
            EvalFraction = 0.05,
            MaxEvalExamples = 64,
            Trainer = new TrainerOptions
            {
                MaxSteps = steps, LearningRate = lr, WarmupRatio = 0.05, MinLearningRateRatio = 0.1, Seed = options.Seed,
                CheckpointEvery = Math.Max(10, steps / 4), OutputDir = Path.Combine(trainingDir, stage),
            },
        };

        // 1. The base model as it is.
        using (var model = ModelLoader.LoadCausalLM(baseDir, device))
        {
            log("evaluating the base model");
            results.Add(Evaluate(MethodNames[0], model, tokenizer, tests, 0, null));
        }

        // 2. Stage 1: one expert per task, all trained in one run with hard routing.
        string stage1Dir = Path.Combine(outDir, "mixers", "stage1");
        using (var model = ModelLoader.LoadCausalLM(baseDir, device))
        {
            LoraMixerModel? mixer = null;
            host("stage 1: experts (hard routing)", (p, ct) =>
            {
                var (m, s) = MixerTrainingJob.TrainExperts(model, tokenizer, trainRecords, tasks, expertConfig, MixerConfigFor(model),
                    Settings("stage1", options.Stage1Steps, options.LoraLearningRate), p, ct);
                mixer = m;
                return s;
            });
            using var trained = mixer!;
            logs["stage 1 experts"] = Path.Combine(trainingDir, "stage1", "train_log.jsonl");
            MixerCheckpoint.Save(trained, stage1Dir);
            long perExpert = trained.ExpertParameterCount() / tasks.Length;

            log("evaluating each expert on its own task (hard routing)");
            trained.SetRouting(new RoutingSettings(RoutingMode.Hard));
            results.Add(Evaluate(MethodNames[1], model, tokenizer, tests, perExpert,
                (task, count) => trained.SetHardExperts(full(new long[] { count }, (long)Array.IndexOf(tasks, task), ScalarType.Int64))));
            trained.SetHardExperts(null);

            log("evaluating the uniform merge of the experts");
            trained.SetRouting(new RoutingSettings(RoutingMode.Soft)); // zero routers: every expert weighted 1/E, i.e. the averaged update
            results.Add(Evaluate(MethodNames[3], model, tokenizer, tests, 0, null));
        }

        // 3. One multi-task LoRA with the parameter budget of all experts together.
        using (var model = ModelLoader.LoadCausalLM(baseDir, device))
        {
            var config = expertConfig with { R = options.Rank * tasks.Length, LoraAlpha = 2 * options.Rank * tasks.Length };
            PeftAdapter? adapter = null;
            host("multi-task LoRA", (p, ct) =>
            {
                var (a, s) = LoraTrainingJob.Run(model, tokenizer, trainRecords, config, "multitask",
                    Settings("multitask", options.Stage1Steps, options.LoraLearningRate), p, ct);
                adapter = a;
                return s;
            });
            using var trained = adapter!;
            trained.Save(Path.Combine(outDir, "adapters", "multitask"));
            logs["multi-task LoRA"] = Path.Combine(trainingDir, "multitask", "train_log.jsonl");
            log("evaluating the multi-task LoRA");
            results.Add(Evaluate(MethodNames[2], model, tokenizer, tests, trained.Modules.Values.Sum(w => w.A.numel() + w.B.numel()), null));
        }

        // 4. Baselines over the same frozen experts: LoRAHub (merge weights searched gradient-free on a few
        //    examples) and MoLE (a dense learned gate per block with a balance loss, no top-k, no entropy term).
        using (var model = ModelLoader.LoadCausalLM(baseDir, device))
        {
            using var mixer = MixerCheckpoint.Load(model, stage1Dir);
            var encoder = new ExampleEncoder(tokenizer, 64, tasks);
            var few = tasks.SelectMany(t => train.Where(i => i.Task == t).Take(5)).Select(i => encoder.Encode(DemoSuite.ToRecord(i))).ToArray();
            log("LoRAHub: searching merge weights (Nelder–Mead) on 5 examples per task");
            var weights = Baselines.LoraHub.Fit(mixer, few, DemoTokenizer.PadId);
            log($"LoRAHub weights: {string.Join(", ", tasks.Select((t, i) => $"{t} {weights[i]:F2}"))}");
            results.Add(Evaluate(MethodNames[4], model, tokenizer, tests, 0,
                (_, count) => mixer.SetHardExperts(zeros(count, dtype: ScalarType.Int64))));
        }
        using (var model = ModelLoader.LoadCausalLM(baseDir, device))
        {
            using var mixer = MixerCheckpoint.Load(model, stage1Dir, c => c with { RouterInput = RouterInput.Token, RouterInputNorm = RouterInputNorm.None, RoutingGranularity = RoutingGranularity.Token });
            var mole = new RoutingLossSettings(Alpha: options.Rsl.Alpha, Lambda: 0, EntropySign: 1, WarmupRatio: 0, Beta: 0);
            host("MoLE: dense gates with a balance loss", (p, ct) => MixerTrainingJob.TrainRouters(mixer, tokenizer, stage2Records, tasks,
                new RoutingSettings(RoutingMode.Soft), mole, trainExperts: false,
                Settings("mole", options.Stage2Steps, options.RouterLearningRate ?? options.Router.Stage2LearningRate), p, ct).Summary);
            logs["MoLE gates"] = Path.Combine(trainingDir, "mole", "train_log.jsonl");
            mixer.SetRouting(new RoutingSettings(RoutingMode.Soft)); // MoLE keeps every expert at inference
            results.Add(Evaluate(MethodNames[5], model, tokenizer, tests, mixer.RouterParameters().Sum(p => p.Value.numel()), null));
        }

        // 5. Stage 2 of both paradigms: routers with RSL (joint also fine-tunes the experts under preservation),
        //    and the paper's router design over the same experts for comparison.
        foreach (var (name, method, trainExperts, preset) in new[]
        {
            ("joint", MethodNames[6], true, options.Router),
            ("plug-and-play", MethodNames[7], false, options.Router),
            ("plug-and-play-paper", MethodNames[8], false, RouterPreset.Paper),
        })
        {
            using var model = ModelLoader.LoadCausalLM(baseDir, device);
            using var mixer = MixerCheckpoint.Load(model, stage1Dir, c => c with { RouterInput = preset.Input, RouterInputNorm = preset.InputNorm, RoutingGranularity = preset.Granularity });
            RoutingStatistics? stats = null;
            string stage = "stage2-" + name;
            var rsl = (trainExperts ? options.Rsl with { Beta = options.JointBeta } : options.Rsl) with { Supervision = preset.Supervision };
            double lr = trainExperts ? options.LoraLearningRate : options.RouterLearningRate ?? preset.Stage2LearningRate;
            host($"stage 2 ({name}): routers with RSL", (p, ct) =>
            {
                var (s, st) = MixerTrainingJob.TrainRouters(mixer, tokenizer, stage2Records, tasks,
                    new RoutingSettings(preset.Stage2Routing, mixer.Config.TopK), rsl, trainExperts,
                    Settings(stage, options.Stage2Steps, lr), p, ct);
                stats = st;
                return s;
            });
            mixer.SetTrainingRecord(new JsonObject
            {
                ["paradigm"] = trainExperts ? "joint" : "plug_and_play", ["preset"] = preset.Name,
                ["stage2_samples"] = stage2Records.Length, ["stage2_steps"] = options.Stage2Steps, ["stage2_lr"] = lr,
                ["rsl_alpha"] = rsl.Alpha, ["rsl_lambda"] = rsl.Lambda, ["entropy_sign"] = rsl.EntropySign, ["beta"] = rsl.Beta,
                ["router_supervision"] = rsl.Supervision,
            });
            MixerCheckpoint.Save(mixer, Path.Combine(outDir, "mixers", name));
            logs[$"stage 2 {name}"] = Path.Combine(trainingDir, stage, "train_log.jsonl");
            log($"evaluating LoRA-Mixer ({name}), top-{mixer.Config.TopK} routing");
            mixer.SetRouting(mixer.Config.InferenceRouting);
            long trainable = mixer.RouterParameters().Sum(p => p.Value.numel()) + (trainExperts ? mixer.ExpertParameterCount() : 0);
            results.Add(Evaluate(method, model, tokenizer, tests, trainable, null));
            routing[method] = TestRouting(mixer, tokenizer, tests, tasks);
        }

        var ordered = MethodNames.Select(n => results.First(r => r.Method == n)).ToArray();
        var result = new DemoResult(tasks, ordered, routing, logs, outDir, clock.Elapsed, architecture);
        DemoReport.Write(result);
        return result;
    }

    /// <summary>Greedy answers to every test prompt of every task; accuracy in percent.</summary>
    private static DemoMethodResult Evaluate(string method, ICausalLM model, ITokenizer tokenizer,
        IReadOnlyDictionary<string, IReadOnlyList<DemoItem>> tests, long trainable, Action<string, int>? beforeTask)
    {
        var accuracy = new Dictionary<string, double>();
        long tokens = 0;
        double seconds = 0;
        foreach (var (task, items) in tests)
        {
            beforeTask?.Invoke(task, items.Count);
            var (acc, _, generated, taken) = DemoScorer.Score(model, tokenizer, items);
            accuracy[task] = acc;
            tokens += generated;
            seconds += taken;
        }
        return new DemoMethodResult(method, accuracy, trainable, tokens / Math.Max(1e-9, seconds));
    }

    /// <summary>Routing statistics of a mixer over the test items (prompt and answer) of every task.</summary>
    private static RoutingStatistics TestRouting(LoraMixerModel mixer, ITokenizer tokenizer,
        IReadOnlyDictionary<string, IReadOnlyList<DemoItem>> tests, IReadOnlyList<string> tasks)
    {
        var encoder = new ExampleEncoder(tokenizer, 64, tasks);
        var examples = tests.Values.SelectMany(items => items).Select(i => encoder.Encode(DemoSuite.ToRecord(i))).ToArray();
        return MixerTrainingJob.CollectStatistics(mixer, examples, tasks, 32);
    }
}
