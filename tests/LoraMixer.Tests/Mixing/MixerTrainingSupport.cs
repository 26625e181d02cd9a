using LoraMixer.Data;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Mixing;

/// <summary>
/// Small, fast set-ups for the two mixer training stages: the committed tiny-llama / tiny-mamba bases with
/// <see cref="Data.CharTokenizer"/> (ids 1..35 fall inside their 128-token vocabulary) and lowercase records.
/// </summary>
internal static class MixerTrainingSupport
{
    public static readonly Data.CharTokenizer Tokenizer = new();

    public static ICausalLM LoadBase(string name = "tiny-llama") => ModelLoader.LoadCausalLM(Path.Combine(TestPaths.Fixtures, "models", name), CPU);

    /// <summary>A lowercase word of <paramref name="length"/> letters from <paramref name="random"/>.</summary>
    public static string Word(Random random, int length) => new([.. Enumerable.Range(0, length).Select(_ => (char)('a' + random.Next(26)))]);

    /// <summary>
    /// <paramref name="count"/> prompt/response records of <paramref name="task"/>; lengths depend only on
    /// <paramref name="lengthSeed"/>, the letters on <paramref name="letterSeed"/>.
    /// </summary>
    public static List<TrainingRecord> Records(string task, int count, int lengthSeed, int letterSeed)
    {
        var lengths = new Random(lengthSeed);
        var letters = new Random(letterSeed);
        var records = new List<TrainingRecord>();
        for (int i = 0; i < count; i++)
        {
            int promptLength = 3 + lengths.Next(5), responseLength = 2 + lengths.Next(4);
            records.Add(new TrainingRecord(task + " " + Word(letters, promptLength), " " + Word(letters, responseLength), null, task, "test", i + 1));
        }
        return records;
    }

    public static MixerConfig Config(ICausalLM model, string baseName, IReadOnlyList<string> experts, RouterScope scope = RouterScope.Block,
        RouterInput input = RouterInput.Token, RouterInputNorm norm = RouterInputNorm.None, RoutingGranularity granularity = RoutingGranularity.Token)
    {
        var (architecture, hidden, layers) = ModelStructure.Describe(model);
        return new MixerConfig
        {
            BaseModel = baseName, Architecture = architecture, HiddenSize = hidden, NumHiddenLayers = layers,
            Targets = TargetLinears.DefaultTargets(model), RouterScope = scope, RouterInput = input, RouterInputNorm = norm,
            RoutingGranularity = granularity, TopK = 2, Experts = experts.Select(e => new MixerExpert(e, "experts/" + e)).ToArray(),
        };
    }

    public static LoraConfig ExpertConfig(ICausalLM model) => new() { R = 2, LoraAlpha = 4, TargetModules = TargetLinears.DefaultTargets(model) };

    /// <summary>A mixer with random experts and routers (from torch's global RNG at <paramref name="seed"/>).</summary>
    public static LoraMixerModel RandomMixer(ICausalLM model, MixerConfig config, long seed, double routerStd = 1.0)
    {
        var mixer = LoraMixerModel.Attach(model, config, Enumerable.Repeat(ExpertConfig(model), config.Experts.Count).ToArray());
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using (manual_seed(seed)) { }
        foreach (var (_, p) in mixer.ExpertParameters()) p.copy_(randn(p.shape) * 0.3);
        foreach (var (_, p) in mixer.RouterParameters()) p.copy_(randn(p.shape) * routerStd);
        return mixer;
    }

    public static FineTuneSettings Settings(int maxSteps, double learningRate, int batchSize = 64, string? outputDir = null,
        bool resume = false, double maxGradNorm = 1.0, double weightDecay = 0.0) => new()
    {
        MaxLength = 32,
        BatchSize = batchSize,
        EvalFraction = 0,
        Trainer = new TrainerOptions
        {
            MaxSteps = maxSteps, LearningRate = learningRate, WarmupSteps = 0, Seed = 5, OutputDir = outputDir, Resume = resume,
            CheckpointEvery = 2, MaxGradNorm = maxGradNorm, WeightDecay = weightDecay,
        },
    };

    /// <summary>Copies of every tensor, by name.</summary>
    public static Dictionary<string, Tensor> Snapshot(IEnumerable<KeyValuePair<string, TorchSharp.Modules.Parameter>> parameters) =>
        parameters.ToDictionary(p => p.Key, p => p.Value.detach().clone().DetachFromDisposeScope());

    /// <summary>Overwrites parameters with a snapshot.</summary>
    public static void Restore(IEnumerable<KeyValuePair<string, TorchSharp.Modules.Parameter>> parameters, Dictionary<string, Tensor> snapshot)
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in parameters) p.copy_(snapshot[name]);
    }

    /// <summary>Every named tensor of the base model other than the mixer's own (experts, routers).</summary>
    public static Dictionary<string, Tensor> BaseWeights(ICausalLM model) =>
        ((nn.Module)model).named_parameters()
            .Where(p => !p.name.Contains("lora_") && !p.name.Contains("router"))
            .ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope());

    public static bool Identical(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
}
