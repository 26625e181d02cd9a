using LoraMixer.Demo;
using static TorchSharp.torch;

namespace LoraMixer.Experiments;

/// <summary>
/// Sizes and settings of the built-in demo, which <see cref="DemoRunner"/> turns into an experiment recipe;
/// the defaults finish in a few minutes on 2 CPU cores. How each method trains is defined once, by the
/// experiment runner (<see cref="ExperimentMethods"/>).
/// </summary>
public sealed record DemoOptions
{
    /// <summary>Folder for the report, the trained adapters and mixers, and the training logs.</summary>
    public string OutputDir { get; init; } = "demo-report";
    /// <summary>Architecture of the default base model: "llama" or "mamba".</summary>
    public string Arch { get; init; } = "llama";
    /// <summary>Base model folder; null = the cached default model (pretrained on first use).</summary>
    public string? BaseModelDir { get; init; }
    /// <summary>Training items per task.</summary>
    public int TrainPerTask { get; init; } = 400;
    /// <summary>Held-out test items per task.</summary>
    public int TestPerTask { get; init; } = 50;
    /// <summary>Optimizer steps of stage 1 (all experts together, hard routing) and of the multi-task LoRA.</summary>
    public int Stage1Steps { get; init; } = 600;
    /// <summary>Mixed samples for stage 2 (router training).</summary>
    public int Stage2Samples { get; init; } = 1000;
    /// <summary>Optimizer steps of each stage-2 run.</summary>
    public int Stage2Steps { get; init; } = 300;
    /// <summary>LoRA rank of each expert (the multi-task LoRA gets rank × tasks: the same parameter budget).</summary>
    public int Rank { get; init; } = 8;
    /// <summary>Experts computed per token at inference.</summary>
    public int TopK { get; init; } = Mixing.RoutingSettings.DefaultTopK;
    /// <summary>Examples per batch.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Learning rate of LoRA training.</summary>
    public double LoraLearningRate { get; init; } = 3e-3;
    /// <summary>Router design and stage-2 recipe of both LoRA-Mixers (the paper's router is always reported beside it).</summary>
    public Mixing.RouterPreset Router { get; init; } = Mixing.RouterPreset.Default;
    /// <summary>Learning rate of router training; null = the preset's.</summary>
    public double? RouterLearningRate { get; init; }
    /// <summary>Seed of data, initialisation and order.</summary>
    public int Seed { get; init; }
    /// <summary>How the default model is pretrained when it is not cached yet.</summary>
    public PretrainSettings Pretrain { get; init; } = new();
    /// <summary>Device (CPU by default).</summary>
    public Device? Device { get; init; }

    /// <summary>
    /// The Mamba demo's sizes: the selective scan's backward pass makes training about 4× slower per token on
    /// CPU than the Llama model's, so fewer steps keep the run near ten minutes.
    /// </summary>
    public static DemoOptions MambaDefaults(DemoOptions options) => options with
    {
        Arch = "mamba",
        Stage1Steps = 300,
        Stage2Steps = 120,
        Pretrain = options.Pretrain with { Steps = 800 },
    };

    /// <summary>A seconds-long run for tests: same pipeline, tiny sizes.</summary>
    public static DemoOptions Quick(string outputDir, string baseModelDir) => new()
    {
        OutputDir = outputDir,
        BaseModelDir = baseModelDir,
        TrainPerTask = 24,
        TestPerTask = 6,
        Stage1Steps = 4,
        Stage2Samples = 40,
        Stage2Steps = 3,
        Rank = 2,
        BatchSize = 8,
        Pretrain = new PretrainSettings { Steps = 3, Documents = 200, BatchSize = 8 },
    };
}
