using LoraMixer.Demo;
using static TorchSharp.torch;

namespace LoraMixer.Experiments;

/// <summary>
/// The built-in demo: the experiment recipe it runs (<see cref="DemoRunner.DefaultRecipe"/>, one seed of the
/// demo's methods on the toy suite), where its report goes, and how the default model is pretrained when it
/// is not cached yet. The defaults finish in a few minutes on 2 CPU cores.
/// </summary>
public sealed record DemoOptions
{
    /// <summary>Folder for the report, the run folder (<c>seed-&lt;s&gt;/</c>) and the suite's data.</summary>
    public string OutputDir { get; init; } = "demo-report";
    /// <summary>What runs: sizes, learning rates, router design, architecture, base model and the seed.</summary>
    public ExperimentRecipe Recipe { get; init; } = DemoRunner.DefaultRecipe;
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
        Recipe = options.Recipe with { Arch = "mamba", Stage1Steps = 300, Stage2Steps = 120 },
        Pretrain = options.Pretrain with { Steps = 800 },
    };

    /// <summary>A seconds-long run for tests: same pipeline, tiny sizes; the base model is pretrained into <paramref name="baseModelDir"/>.</summary>
    public static DemoOptions Quick(string outputDir, string baseModelDir) => new()
    {
        OutputDir = outputDir,
        Recipe = DemoRunner.DefaultRecipe with
        {
            BaseModel = Path.GetFullPath(baseModelDir),
            Stage1Samples = 24,
            DemoTestPerTask = 6,
            Stage1Steps = 4,
            Stage2Samples = 40,
            Stage2Steps = 3,
            Rank = 2,
            BatchSize = 8,
        },
        Pretrain = new PretrainSettings { Steps = 3, Documents = 200, BatchSize = 8 },
    };
}
