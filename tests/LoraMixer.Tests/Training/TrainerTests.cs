using LoraMixer.Errors;
using LoraMixer.Training;

namespace LoraMixer.Tests.Training;

[Collection(TrainingCollection.Name)]
public sealed class TrainerTests
{
    // 24 examples in batches of 4, two micro-batches per step: 3 steps per epoch, so 10 steps cross epochs
    // and end mid-epoch; dropout, weight decay, clipping and warm-up are all active.
    private static TrainerOptions Options(string? outputDir) => new()
    {
        MaxSteps = 10,
        LearningRate = 0.05,
        WeightDecay = 0.01,
        WarmupSteps = 2,
        MinLearningRateRatio = 0.1,
        MaxGradNorm = 0.5,
        GradientAccumulationSteps = 2,
        EvalEvery = 4,
        CheckpointEvery = 3,
        Seed = 11,
        OutputDir = outputDir,
    };

    [Fact]
    public void Resumed_run_ends_with_the_same_weights_optimizer_state_and_log_as_an_uninterrupted_one()
    {
        string straightDir = TestPaths.NewTempDir();
        using var straight = new TinyMlpObjective();
        TrainingSummary full = new Trainer(Options(straightDir), straight).Run();
        Assert.Equal(10, full.Steps);
        Assert.False(full.Interrupted);

        string resumedDir = TestPaths.NewTempDir();
        using (var first = new TinyMlpObjective())
        {
            using var cts = new CancellationTokenSource();
            var stopped = new Trainer(Options(resumedDir), first).Run(new SyncProgress<TrainingProgress>(p => { if (p.Step == 4) cts.Cancel(); }), cts.Token);
            Assert.True(stopped.Interrupted);
            Assert.Equal(4, stopped.Steps);
            Assert.EndsWith("step-000004", stopped.LastCheckpoint);
        }
        // Different initial weights: everything must come from the checkpoint.
        using var second = new TinyMlpObjective(initSeed: 99);
        TrainingSummary resumed = new Trainer(Options(resumedDir) with { Resume = true }, second).Run();

        Assert.Equal(4, resumed.ResumedFromStep);
        Assert.Equal(10, resumed.Steps);
        Assert.Equal([5, 6, 7, 8, 9, 10], second.StepsEnded);
        var expected = straight.Snapshot();
        foreach (var (name, values) in second.Snapshot()) Assert.Equal(expected[name], values);
        Assert.Equal(
            TrainingFiles.ReadAll(Path.Combine(full.LastCheckpoint!, TrainingCheckpoint.OptimizerFile)),
            TrainingFiles.ReadAll(Path.Combine(resumed.LastCheckpoint!, TrainingCheckpoint.OptimizerFile)));

        var log = TrainingFiles.ReadLog(resumedDir);
        Assert.Equal(Enumerable.Range(1, 10), TrainingFiles.StepLines(log));
        Assert.Equal([4, 8, 10], TrainingFiles.EvalLines(log));
        Assert.Equal(File.ReadAllLines(Path.Combine(straightDir, "train_log.jsonl")).Select(WithoutSpeed),
            File.ReadAllLines(Path.Combine(resumedDir, "train_log.jsonl")).Select(WithoutSpeed));
        Assert.Equal(full.BestEvalLoss, resumed.BestEvalLoss);
    }

    [Fact]
    public void After_a_crash_resume_uses_the_last_complete_checkpoint_and_ignores_half_written_ones()
    {
        string dir = TestPaths.NewTempDir();
        using (var crashing = new TinyMlpObjective { BeforeMicroStep = (epoch, batch) => { if (epoch == 2 && batch == 2) throw new IOException("power cut"); } })
            Assert.Throws<IOException>(() => new Trainer(Options(dir), crashing).Run()); // dies in step 8; checkpoints at 3 and 6
        string checkpoints = TrainingCheckpoint.CheckpointsFolder(dir);
        Assert.Equal("step-000006", File.ReadAllText(Path.Combine(checkpoints, "latest")).Trim());
        // What a crash in the middle of saving step 9 leaves: a half-written temporary folder, and a
        // renamed folder that latest never came to name, holding a stale state.
        string half = Directory.CreateDirectory(Path.Combine(checkpoints, "step-000009.tmp-0badc0de")).FullName;
        File.WriteAllBytes(Path.Combine(half, TrainingCheckpoint.TrainableFile), [1, 2, 3]);
        string orphan = Directory.CreateDirectory(Path.Combine(checkpoints, "step-000009")).FullName;
        File.WriteAllText(Path.Combine(orphan, TrainingCheckpoint.StateFile), "{\"step\": 9");

        using var resumedObjective = new TinyMlpObjective(initSeed: 5);
        TrainingSummary resumed = new Trainer(Options(dir) with { Resume = true }, resumedObjective).Run();

        Assert.Equal(6, resumed.ResumedFromStep);
        Assert.False(Directory.Exists(half));
        using var straight = new TinyMlpObjective();
        new Trainer(Options(null), straight).Run();
        var expected = straight.Snapshot();
        foreach (var (name, values) in resumedObjective.Snapshot()) Assert.Equal(expected[name], values);
        Assert.Equal(Enumerable.Range(1, 10), TrainingFiles.StepLines(TrainingFiles.ReadLog(dir)));
    }

    [Fact]
    public void After_every_save_latest_names_a_complete_loadable_checkpoint_and_only_the_newest_are_kept()
    {
        string dir = TestPaths.NewTempDir();
        using var objective = new TinyMlpObjective();
        var names = objective.Parameters.Select(p => p.Key).ToHashSet();
        var seen = new List<int>();
        var progress = new SyncProgress<TrainingProgress>(p =>
        {
            string checkpoints = TrainingCheckpoint.CheckpointsFolder(dir);
            var latest = TrainingCheckpoint.FindLatest(dir)!;
            Assert.Equal(p.Checkpoint, latest.Directory);
            Assert.Equal(p.Step, latest.State.Step);
            foreach (string file in new[] { TrainingCheckpoint.TrainableFile, TrainingCheckpoint.OptimizerFile, TrainingCheckpoint.StateFile })
                Assert.True(File.Exists(Path.Combine(latest.Directory, file)), file);
            Assert.Equal(names, TrainingFiles.ReadAll(Path.Combine(latest.Directory, TrainingCheckpoint.TrainableFile)).Keys.ToHashSet());
            Assert.Equal(3 * names.Count, TrainingFiles.ReadAll(Path.Combine(latest.Directory, TrainingCheckpoint.OptimizerFile)).Count);
            var folders = Directory.GetDirectories(checkpoints).Select(Path.GetFileName).Order().ToList();
            Assert.Equal(Enumerable.Range(Math.Max(1, p.Step - 1), Math.Min(2, p.Step)).Select(TrainingCheckpoint.FolderName), folders);
            seen.Add(p.Step);
        });
        new Trainer(Options(dir) with { CheckpointEvery = 1, KeepCheckpoints = 2 }, objective).Run(progress);
        Assert.Equal(Enumerable.Range(1, 10), seen);
    }

    [Fact]
    public void Two_micro_batches_of_one_accumulate_to_the_same_step_as_one_batch_of_two()
    {
        TrainerOptions options = new() { MaxSteps = 4, LearningRate = 0.05, WarmupSteps = 0, MaxGradNorm = 0.5, WeightDecay = 0.1, Seed = 3 };
        using var whole = new TinyMlpObjective(batchSize: 2, dropout: 0, examples: 8);
        using var split = new TinyMlpObjective(batchSize: 1, dropout: 0, examples: 8);
        var wholeLosses = new List<double>();
        var splitLosses = new List<double>();
        new Trainer(options, whole).Run(new SyncProgress<TrainingProgress>(p => wholeLosses.Add(p.Loss)));
        new Trainer(options with { GradientAccumulationSteps = 2 }, split).Run(new SyncProgress<TrainingProgress>(p => splitLosses.Add(p.Loss)));

        var expected = whole.Snapshot();
        foreach (var (name, values) in split.Snapshot())
            Assert.Equal(expected[name], values, (a, b) => Math.Abs(a - b) <= 1e-6);
        Assert.Equal(wholeLosses, splitLosses, (a, b) => Math.Abs(a - b) <= 1e-6);
        using var untrained = new TinyMlpObjective(batchSize: 2, dropout: 0, examples: 8);
        Assert.NotEqual(untrained.Snapshot()["mlp.fc1.weight"], expected["mlp.fc1.weight"]);
    }

    [Fact]
    public void Same_seed_gives_identical_weights_and_another_seed_does_not()
    {
        Dictionary<string, float[]> Train(long seed)
        {
            using var objective = new TinyMlpObjective();
            new Trainer(Options(null) with { Seed = seed }, objective).Run();
            return objective.Snapshot();
        }
        var a = Train(11);
        var b = Train(11);
        var c = Train(12);
        foreach (var (name, values) in a) Assert.Equal(values, b[name]);
        Assert.NotEqual(a["mlp.fc1.weight"], c["mlp.fc1.weight"]);
    }

    [Theory]
    [InlineData("LearningRate")]
    [InlineData("GradientAccumulationSteps")]
    [InlineData("Seed")]
    [InlineData("TotalSteps")]
    [InlineData("BatchesPerEpoch")]
    [InlineData("batch_size")]
    public void Resuming_with_an_option_that_changes_the_trajectory_is_refused_naming_it(string option)
    {
        string dir = TestPaths.NewTempDir();
        TrainerOptions original = Options(dir) with { MaxSteps = 3, TrajectorySettings = new Dictionary<string, string> { ["batch_size"] = "4" } };
        using (var objective = new TinyMlpObjective()) new Trainer(original, objective).Run();
        TrainerOptions changed = option switch
        {
            "LearningRate" => original with { LearningRate = 0.01 },
            "GradientAccumulationSteps" => original with { GradientAccumulationSteps = 1 },
            "Seed" => original with { Seed = 12 },
            "TotalSteps" => original with { MaxSteps = 6 },
            "batch_size" => original with { TrajectorySettings = new Dictionary<string, string> { ["batch_size"] = "8" } },
            _ => original,
        };
        int batchSize = option == "BatchesPerEpoch" ? 2 : 4;
        using var again = new TinyMlpObjective(batchSize: batchSize);
        var error = Assert.Throws<ArgumentException>(() => new Trainer(changed with { Resume = true }, again).Run());
        Assert.Contains(option + " was ", error.Message);
        // A caller's name for the setting (its command-line flag) is used when given.
        using var named = new TinyMlpObjective(batchSize: batchSize);
        var namedError = Assert.Throws<ArgumentException>(() => new Trainer(changed with
        {
            Resume = true,
            SettingNames = new Dictionary<string, string> { [option] = "--the-flag" },
        }, named).Run());
        Assert.Contains("--the-flag was ", namedError.Message);
        // Settings that do not shape the trajectory may change.
        using var fine = new TinyMlpObjective();
        var summary = new Trainer(original with { Resume = true, EvalEvery = 1, CheckpointEvery = 7, KeepCheckpoints = 5 }, fine).Run();
        Assert.Equal(3, summary.Steps);
    }

    [Theory]
    [InlineData(TrainingCheckpoint.OptimizerFile)]
    [InlineData(TrainingCheckpoint.TrainableFile)]
    [InlineData(TrainingCheckpoint.StateFile)]
    public void A_missing_or_corrupt_checkpoint_file_is_reported_by_name(string file)
    {
        string dir = TestPaths.NewTempDir();
        using (var objective = new TinyMlpObjective()) new Trainer(Options(dir) with { MaxSteps = 3 }, objective).Run();
        string path = Path.Combine(TrainingCheckpoint.CheckpointsFolder(dir), "step-000003", file);

        File.WriteAllBytes(path, [(byte)'{', 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        using var corrupt = new TinyMlpObjective();
        var error = Assert.Throws<ModelFormatException>(() => new Trainer(Options(dir) with { MaxSteps = 3, Resume = true }, corrupt).Run());
        Assert.Contains(path, error.Message);

        File.Delete(path);
        using var missing = new TinyMlpObjective();
        error = Assert.Throws<ModelFormatException>(() => new Trainer(Options(dir) with { MaxSteps = 3, Resume = true }, missing).Run());
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void A_fresh_run_refuses_a_folder_that_holds_a_run_and_resume_of_an_empty_folder_starts_afresh()
    {
        string dir = TestPaths.NewTempDir();
        using (var objective = new TinyMlpObjective())
        {
            var summary = new Trainer(Options(dir) with { MaxSteps = 2, Resume = true }, objective).Run();
            Assert.Null(summary.ResumedFromStep);
            Assert.Equal(2, summary.Steps);
        }
        using var again = new TinyMlpObjective();
        var error = Assert.Throws<ArgumentException>(() => new Trainer(Options(dir) with { MaxSteps = 2 }, again).Run());
        Assert.Contains("--resume", error.Message);
    }

    [Fact]
    public void Epoch_mode_runs_ceil_batches_over_accumulation_steps_per_epoch_and_reports_each_step()
    {
        using var objective = new TinyMlpObjective(batchSize: 5, examples: 25); // 5 batches: steps of 2, 2, 1
        var reports = new List<TrainingProgress>();
        var summary = new Trainer(new TrainerOptions { Epochs = 2, GradientAccumulationSteps = 2, EvalEvery = 4 }, objective)
            .Run(new SyncProgress<TrainingProgress>(reports.Add));
        Assert.Equal(6, summary.TotalSteps);
        Assert.Equal(Enumerable.Range(1, 6), reports.Select(r => r.Step));
        Assert.Equal([0.4, 0.8, 1.0, 1.4, 1.8, 2.0], reports.Select(r => r.Epoch), (a, b) => Math.Abs(a - b) < 1e-12);
        Assert.Equal([4, 6], reports.Where(r => r.Eval is not null).Select(r => r.Step));
        Assert.All(reports, r => Assert.True(r.GradNorm > 0 && r.TokensPerSecond > 0 && r.Metrics.ContainsKey("w2_abs_mean")));
        Assert.Equal(0.0, reports[^1].LearningRate);
        Assert.Equal(TimeSpan.Zero, reports[^1].Eta);
        Assert.NotNull(summary.FinalEval);
    }

    [Theory]
    [InlineData("GradientAccumulationSteps")]
    [InlineData("LearningRate")]
    [InlineData("KeepCheckpoints")]
    [InlineData("Resume")]
    public void Invalid_options_are_rejected_naming_the_option(string option)
    {
        TrainerOptions options = option switch
        {
            "GradientAccumulationSteps" => new() { GradientAccumulationSteps = 0 },
            "LearningRate" => new() { LearningRate = double.NaN },
            "KeepCheckpoints" => new() { KeepCheckpoints = 0 },
            _ => new() { Resume = true },
        };
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.StartsWith($"Training option {option} = ", error.Message);
    }

    private static string WithoutSpeed(string line) =>
        System.Text.RegularExpressions.Regex.Replace(line, "\"tokens_per_s\":[^,}]*", "");
}
