using System.Text.Json.Nodes;
using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Tests.Training;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// The two paradigms through <see cref="MixerPipeline"/>: stage 1 saved with its settings and reused only
/// when they match, stage 2 of each paradigm (what trains, what is recorded, what is refused).
/// </summary>
[Collection(TrainingCollection.Name)]
public sealed class MixerPipelineTests
{
    private static readonly TrainingHost Host = (_, work) => work(null!, default);

    private static readonly IReadOnlyList<TrainingRecord> Records = Enumerable.Range(0, 16).SelectMany(i => new[]
    {
        new TrainingRecord($"add {i} 1:", $" {i + 1}", null, "math"),
        new TrainingRecord($"say {i}:", $" hi {i}", null, "chat"),
    }).ToArray();

    private static readonly string[] Tasks = ["math", "chat"];

    private static FineTuneSettings Settings(string dir, int steps, double lr = 1e-2, bool resume = false) => new()
    {
        MaxLength = 32, BatchSize = 4, EvalFraction = 0.1,
        Trainer = new TrainerOptions { MaxSteps = steps, LearningRate = lr, CheckpointEvery = 0, OutputDir = dir, Resume = resume },
    };

    private static ExpertTraining Stage1(string dir, double alpha = 8, bool resume = false) => new()
    {
        Expert = new LoraConfig { R = 2, LoraAlpha = alpha, TargetModules = TargetLinears.AttentionProjections },
        Training = Settings(dir, 3, resume: resume),
    };

    private static MixerPipeline Pipeline(List<string>? log = null) =>
        new(TinyDefaultModel.Path_, TokenizerLoader.Load(TinyDefaultModel.Path_), CPU, Host, log is null ? null : log.Add);

    [Fact]
    public void Joint_stage1_is_saved_with_its_settings_reused_when_they_match_and_refused_when_not()
    {
        string root = TestPaths.NewTempDir(), stage1 = Path.Combine(root, "stage1-mixer");
        var summary = Pipeline().TrainExperts(Records, Tasks, Stage1(Path.Combine(root, "stage1")), stage1);
        Assert.NotNull(summary);
        Assert.Equal(3, summary!.Steps);
        var config = MixerConfig.Load(stage1);
        Assert.Equal(Tasks, config.Experts.Select(e => e.Name));
        Assert.Equal(RecordsFingerprint.Of(Records), config.Training["stage1"]!["data"]!.GetValue<string>());
        byte[] expert = File.ReadAllBytes(Path.Combine(stage1, "experts", "math", "adapter_model.safetensors"));

        // Same settings and data, resuming: reused as it is.
        var log = new List<string>();
        Assert.Null(Pipeline(log).TrainExperts(Records, Tasks, Stage1(Path.Combine(root, "stage1"), resume: true), stage1));
        Assert.Contains(log, l => l.Contains("already finished"));
        Assert.Equal(expert, File.ReadAllBytes(Path.Combine(stage1, "experts", "math", "adapter_model.safetensors")));

        // Another alpha, or other records, are refused naming the setting and both values.
        var alpha = Assert.Throws<ArgumentException>(() =>
            Pipeline().TrainExperts(Records, Tasks, Stage1(Path.Combine(root, "stage1"), alpha: 4, resume: true), stage1));
        Assert.Contains("lora_alpha was 8 and is now 4", alpha.Message);
        var other = Records.Select(r => r with { Response = r.Response + "!" }).ToArray();
        var data = Assert.Throws<ArgumentException>(() =>
            Pipeline().TrainExperts(other, Tasks, Stage1(Path.Combine(root, "stage1"), resume: true), stage1));
        Assert.Contains($"data was {RecordsFingerprint.Of(Records)} and is now {RecordsFingerprint.Of(other)}", data.Message);
    }

    [Fact]
    public void Joint_stage2_with_beta_trains_experts_and_routers_plug_and_play_only_routers()
    {
        string root = TestPaths.NewTempDir(), stage1 = Path.Combine(root, "stage1-mixer");
        Pipeline().TrainExperts(Records, Tasks, Stage1(Path.Combine(root, "stage1")), stage1);
        Dictionary<string, float[]> expertsBefore;
        using (var model = ModelLoader.LoadCausalLM(TinyDefaultModel.Path_, CPU))
        using (var mixer = MixerCheckpoint.Load(model, stage1))
            expertsBefore = mixer.ExpertParameters().ToDictionary(p => p.Key, p => p.Value.data<float>().ToArray());

        RouterTraining Stage2(string dir, RoutingLossSettings loss) => new()
        {
            Preset = RouterPreset.Default, Loss = loss, Training = Settings(dir, 3), TopK = 1,
        };
        using (var joint = Pipeline().TrainRouters(Paradigm.Joint, ExpertSource.Mixer(stage1), Records, Tasks,
                   Stage2(Path.Combine(root, "joint-training"), new RoutingLossSettings(Beta: 1.0)), Path.Combine(root, "joint"),
                   new JsonObject { ["note"] = "mine" }))
        {
            Assert.False(joint.Summary.Interrupted);
            Assert.Contains(joint.Mixer.ExpertParameters(), p => !p.Value.data<float>().ToArray().SequenceEqual(expertsBefore[p.Key]));
            Assert.All(joint.Mixer.Slots, s => Assert.Equal(new RoutingSettings(RoutingMode.TopK, 1), s.Settings));
        }
        var record = MixerConfig.Load(Path.Combine(root, "joint")).Training;
        Assert.Equal("joint", record["paradigm"]!.GetValue<string>());
        Assert.True(record["stage2"]!["train_experts"]!.GetValue<bool>());
        Assert.Equal(3, record["stage1"]!["steps"]!.GetValue<int>());
        Assert.Equal("mine", record["note"]!.GetValue<string>());

        using (var pnp = Pipeline().TrainRouters(Paradigm.PlugAndPlay, ExpertSource.Mixer(stage1), Records, Tasks,
                   Stage2(Path.Combine(root, "pnp-training"), new RoutingLossSettings()), Path.Combine(root, "pnp")))
        {
            foreach (var (key, p) in pnp.Mixer.ExpertParameters()) Assert.Equal(expertsBefore[key], p.data<float>().ToArray());
            Assert.Contains(pnp.Mixer.RouterParameters(), p => p.Value.abs().sum().item<float>() > 0);
        }
        Assert.Equal("plug_and_play", MixerConfig.Load(Path.Combine(root, "pnp")).Training["paradigm"]!.GetValue<string>());

        // β trains experts, which plug-and-play never does; joint continues from its stage-1 folder, not from adapters.
        Assert.Contains("only joint", Assert.Throws<ArgumentException>(() => Pipeline().TrainRouters(Paradigm.PlugAndPlay,
            ExpertSource.Mixer(stage1), Records, Tasks, Stage2(Path.Combine(root, "x"), new RoutingLossSettings(Beta: 1.0)), null)).Message);
        Assert.Contains("stage-1", Assert.Throws<ArgumentException>(() => Pipeline().TrainRouters(Paradigm.Joint,
            ExpertSource.FromAdapters([("math", Path.Combine(stage1, "experts", "math"))]), Records, Tasks,
            Stage2(Path.Combine(root, "y"), new RoutingLossSettings()), null)).Message);
        // k larger than the number of experts is an error, not a clamp.
        Assert.Contains("top-k must be between 1 and the number of experts (2), got 3", Assert.Throws<ArgumentException>(() =>
            Pipeline().TrainRouters(Paradigm.PlugAndPlay, ExpertSource.Mixer(stage1), Records, Tasks,
                Stage2(Path.Combine(root, "z"), new RoutingLossSettings()) with { TopK = 3 }, null)).Message);
    }
}
