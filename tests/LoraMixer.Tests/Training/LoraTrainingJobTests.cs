using LoraMixer.Models.Llama;
using LoraMixer.Demo;
using LoraMixer.Lora;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Training;

[Collection(TrainingCollection.Name)]
public sealed class LoraTrainingJobTests
{
    private static readonly LoraConfig Config = new()
    {
        R = 4, LoraAlpha = 8, TargetModules = TargetLinears.AttentionProjections, LoraDropout = 0.1,
    };

    private static FineTuneSettings Settings(string outDir, bool resume) => new()
    {
        MaxLength = 48,
        BatchSize = 4,
        EvalFraction = 0.1,
        Trainer = new TrainerOptions { MaxSteps = 6, LearningRate = 5e-3, CheckpointEvery = 2, OutputDir = outDir, Resume = resume, Seed = 7 },
    };

    private static (PeftAdapter Adapter, TrainingSummary Summary) Train(string outDir, bool resume, int? stopAfter = null)
    {
        using var model = LlamaLoader.Load(TinyDefaultModel.Path_);
        var tokenizer = TokenizerLoader.Load(TinyDefaultModel.Path_);
        var records = DemoSuite.Tasks.SelectMany(t => DemoSuite.Generate(t.Name, 12, 1)).Select(DemoSuite.ToRecord).ToArray();
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress<TrainingProgress>(p => { if (p.Step == stopAfter) cts.Cancel(); });
        return LoraTrainingJob.Run(model, tokenizer, records, Config, "test", Settings(outDir, resume), progress, cts.Token);
    }

    [Fact]
    public void Interrupted_and_resumed_LoRA_training_equals_an_uninterrupted_run()
    {
        var (straight, summary) = Train(TestPaths.NewTempDir(), resume: false);
        Assert.Equal(6, summary.Steps);
        string dir = TestPaths.NewTempDir();
        var (_, first) = Train(dir, resume: false, stopAfter: 3);
        Assert.True(first.Interrupted);
        Assert.Equal(3, first.Steps);
        var (resumed, second) = Train(dir, resume: true);
        Assert.Equal(3, second.ResumedFromStep);
        Assert.Equal(straight.Modules.Keys, resumed.Modules.Keys);
        foreach (var (module, w) in straight.Modules)
        {
            Assert.True(w.A.allclose(resumed.Modules[module].A, rtol: 0, atol: 0), $"{module} lora_A differs");
            Assert.True(w.B.allclose(resumed.Modules[module].B, rtol: 0, atol: 0), $"{module} lora_B differs");
        }
        Assert.True(straight.Modules.Values.Any(w => w.B.abs().max().item<float>() > 0), "training must move B away from zero");
        int logged = File.ReadLines(Path.Combine(dir, "train_log.jsonl")).Count(l => l.Contains("\"loss\""));
        Assert.Equal(6, logged);
    }

    [Fact]
    public void Trained_adapter_round_trips_through_PEFT_files_and_reproduces_the_logits()
    {
        var (adapter, _) = Train(TestPaths.NewTempDir(), resume: false);
        string dir = Path.Combine(TestPaths.NewTempDir(), "adapter");
        adapter.Save(dir);
        using var reloaded = PeftAdapter.Load(dir);
        var ids = tensor(new long[] { 1, 40, 41, 42, 30 }, new long[] { 1, 5 });
        using var noGrad = no_grad();
        using var merged = LlamaLoader.Load(TinyDefaultModel.Path_);
        AdapterInjector.Apply(merged, reloaded, merge: true);
        using var unmerged = LlamaLoader.Load(TinyDefaultModel.Path_);
        AdapterInjector.Apply(unmerged, adapter, merge: false);
        using var plain = LlamaLoader.Load(TinyDefaultModel.Path_);
        var a = merged.Forward(ids);
        var b = unmerged.Forward(ids);
        Assert.True(a.allclose(b, rtol: 1e-4, atol: 1e-5), "merged and unmerged adapters must agree");
        Assert.False(a.allclose(plain.Forward(ids), rtol: 1e-4, atol: 1e-4), "the adapter must change the model");
    }
}
