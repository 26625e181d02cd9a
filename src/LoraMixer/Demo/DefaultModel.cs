using System.Globalization;
using System.Text.Json;
using LoraMixer.Data;
using LoraMixer.IO;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Demo;

/// <summary>
/// The embedded default base model: a tiny character-level Llama that the project pretrains itself from
/// <see cref="PretrainingCorpus"/> (no download) and caches as an ordinary Hugging Face model folder.
/// </summary>
public static class DefaultModel
{
    /// <summary>Bump when the recipe changes so stale caches are rebuilt.</summary>
    public const string Version = "v1";

    /// <summary>The architecture: 4 blocks, hidden 128, 4 heads over 2 key/value heads (GQA), SwiGLU 344.</summary>
    public static LlamaConfig Config { get; } = new()
    {
        Architecture = "LlamaForCausalLM",
        ModelType = "llama",
        VocabSize = DemoTokenizer.VocabSize,
        HiddenSize = 128,
        IntermediateSize = 344,
        NumHiddenLayers = 4,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        HeadDim = 32,
        MaxPositionEmbeddings = 256,
        RmsNormEps = 1e-5,
        RopeTheta = 10000,
        TieWordEmbeddings = true,
        QkvBias = false,
        OutputBias = false,
        BosTokenId = DemoTokenizer.BosId,
        EosTokenIds = new[] { DemoTokenizer.EosId },
    };

    /// <summary>The Mamba variant (<c>--arch mamba</c>): 4 Mamba-1 blocks, hidden 128, state 16, expand 2.</summary>
    public static MambaConfig MambaConfig { get; } = new()
    {
        Architecture = "MambaForCausalLM",
        ModelType = "mamba",
        VocabSize = DemoTokenizer.VocabSize,
        HiddenSize = 128,
        StateSize = 16,
        NumHiddenLayers = 4,
        Expand = 2,
        ConvKernel = 4,
        TimeStepRank = 8,
        UseBias = false,
        UseConvBias = true,
        LayerNormEpsilon = 1e-5,
        MixerRmsEps = 1e-6,
        TieWordEmbeddings = true,
        BosTokenId = DemoTokenizer.BosId,
        EosTokenId = DemoTokenizer.EosId,
    };

    /// <summary>Architectures the default model comes in.</summary>
    public static readonly IReadOnlyList<string> Architectures = new[] { "llama", "mamba" };

    /// <summary>
    /// Where the cached model lives: <c>$LORAMIXER_CACHE</c> or <c>~/.cache/loramixer</c>, then
    /// <c>default-model-v1</c> (or <c>default-mamba-v1</c>).
    /// </summary>
    public static string CacheDir(string arch = "llama")
    {
        string root = Environment.GetEnvironmentVariable("LORAMIXER_CACHE") is { Length: > 0 } env
            ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "loramixer");
        return Path.Combine(root, (arch == "mamba" ? "default-mamba-" : "default-model-") + Version);
    }

    /// <summary>True when <paramref name="dir"/> holds a complete model folder.</summary>
    public static bool Exists(string dir) =>
        File.Exists(Path.Combine(dir, "config.json")) && File.Exists(Path.Combine(dir, "model.safetensors"))
        && File.Exists(Path.Combine(dir, "tokenizer.json"));

    /// <summary>
    /// Why the model in <paramref name="dir"/> is not the one <paramref name="settings"/> would pretrain (a setting
    /// recorded in its config.json under <c>loramixer_pretraining</c> differs), or null when it is: a cache left by an
    /// older recipe is rebuilt instead of silently reused. Settings an older cache did not record are not compared, and a
    /// folder without the record (not pretrained here) is never called stale.
    /// </summary>
    public static string? Staleness(string dir, PretrainSettings settings)
    {
        System.Text.Json.Nodes.JsonNode? recorded;
        try
        {
            recorded = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))?["loramixer_pretraining"];
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return $"its config.json cannot be read ({e.Message})";
        }
        if (recorded is null) return null; // not a folder this class pretrained (a user's --base-model): never overwritten
        var expected = new (string Name, string Value)[]
        {
            ("version", Version), ("arch", settings.Arch), ("steps", settings.Steps.ToString(CultureInfo.InvariantCulture)),
            ("documents", settings.Documents.ToString(CultureInfo.InvariantCulture)), ("seed", settings.Seed.ToString(CultureInfo.InvariantCulture)),
            ("batch_size", settings.BatchSize.ToString(CultureInfo.InvariantCulture)),
            ("learning_rate", settings.LearningRate.ToString("R", CultureInfo.InvariantCulture)),
        };
        foreach (var (name, value) in expected)
        {
            if (recorded[name] is not { } node) continue;
            string was = node.ToJsonString().Trim('"');
            if (was != value) return $"it was pretrained with {name} {was}, and the recipe now has {value}";
        }
        return null;
    }

    // HF's initialisation: every matrix N(0, 0.02) and norms at 1 (TorchSharp's defaults would give the tied
    // embedding N(0, 1) rows and logits far too large to train from). Mamba (HF MambaPreTrainedModel):
    // A_log = log(1..N) per channel, D = 1, dt_proj's bias the inverse softplus of Δ log-uniform in
    // [0.001, 0.1], dt_proj's weight uniform ±rank^-0.5, conv weights as TorchSharp initialises them.
    private static void Initialize(IReadOnlyList<KeyValuePair<string, TorchSharp.Modules.Parameter>> parameters, bool mamba)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, p) in parameters)
        {
            if (mamba && name.EndsWith(".A_log", StringComparison.Ordinal))
                p.copy_(arange(1, p.shape[1] + 1, dtype: ScalarType.Float32).log().expand(p.shape[0], p.shape[1]));
            else if (mamba && name.EndsWith(".D", StringComparison.Ordinal))
                p.fill_(1.0);
            else if (mamba && name.EndsWith(".dt_proj.bias", StringComparison.Ordinal))
            {
                var dt = (rand(p.shape) * (Math.Log(0.1) - Math.Log(0.001)) + Math.Log(0.001)).exp().clamp_min(1e-4);
                p.copy_(dt + (-(-dt).expm1()).log()); // inverse of softplus
            }
            else if (mamba && name.EndsWith(".dt_proj.weight", StringComparison.Ordinal))
            {
                double bound = Math.Pow(p.shape[1], -0.5);
                p.uniform_(-bound, bound);
            }
            else if (mamba && name.Contains(".conv1d.", StringComparison.Ordinal)) continue;
            else if (p.dim() == 2) p.normal_(0, 0.02);
        }
    }

    /// <summary>
    /// Pretrains the default model and writes it to <paramref name="outDir"/> (assembled in a temporary
    /// sibling folder and renamed into place, so an interrupted run leaves nothing half-written).
    /// </summary>
    public static TrainingSummary Pretrain(string outDir, PretrainSettings settings, IProgress<TrainingProgress>? progress = null,
        CancellationToken ct = default)
    {
        outDir = Path.GetFullPath(outDir);
        Directory.CreateDirectory(Path.GetDirectoryName(outDir)!);
        string temp = outDir + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(temp);
        try
        {
            DemoTokenizer.WriteFiles(temp);
            var tokenizer = TokenizerLoader.Load(temp);
            var records = PretrainingCorpus.Generate(settings.Documents, settings.Seed)
                .Select((text, i) => new TrainingRecord(null, null, text, null, "corpus", i + 1)).ToArray();
            var fine = new FineTuneSettings
            {
                MaxLength = 96,
                BatchSize = settings.BatchSize,
                EvalFraction = 0.02,
                MaxEvalExamples = 128,
                Trainer = new TrainerOptions
                {
                    MaxSteps = settings.Steps,
                    LearningRate = settings.LearningRate,
                    WarmupRatio = 0.05,
                    MinLearningRateRatio = 0.1,
                    WeightDecay = 0.01,
                    Seed = settings.Seed,
                    CheckpointEvery = 0,
                },
            };
            var data = EncodedData.Create(tokenizer, records, fine);
            using (manual_seed(settings.Seed)) { }
            var device = settings.Device ?? CPU;
            bool mamba = settings.Arch == "mamba";
            if (!Architectures.Contains(settings.Arch))
                throw new ArgumentException($"unknown architecture '{settings.Arch}'; the default model comes as {string.Join(" or ", Architectures)}");
            using TorchSharp.torch.nn.Module module = mamba ? new MambaForCausalLM(MambaConfig, device) : new LlamaForCausalLM(Config, device);
            var model = (ICausalLM)module;
            var parameters = module.named_parameters().Select(p => new KeyValuePair<string, TorchSharp.Modules.Parameter>(p.name, p.parameter)).ToArray();
            Initialize(parameters, mamba);
            module.train();
            var objective = new CausalLmObjective(model, parameters, data.Train, data.Eval, fine.BatchSize, fine.Trainer.Seed, DemoTokenizer.PadId);
            var summary = new Trainer(fine.Trainer, objective).Run(progress, ct);
            if (summary.Interrupted) return summary;
            module.eval();
            SafeTensorsWriter.Write(Path.Combine(temp, "model.safetensors"),
                parameters.Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value.detach().cpu())),
                new Dictionary<string, string> { ["format"] = "pt" });
            var json = mamba ? MambaConfig.ToJson() : Config.ToJson();
            json["loramixer_pretraining"] = new System.Text.Json.Nodes.JsonObject
            {
                ["version"] = Version,
                ["arch"] = settings.Arch,
                ["steps"] = settings.Steps,
                ["documents"] = settings.Documents,
                ["seed"] = settings.Seed,
                ["batch_size"] = settings.BatchSize,
                ["learning_rate"] = settings.LearningRate,
                ["final_eval_loss"] = summary.FinalEval?.GetValueOrDefault("eval_loss"),
            };
            File.WriteAllText(Path.Combine(temp, "config.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
            Directory.Move(temp, outDir);
            return summary;
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }
}
