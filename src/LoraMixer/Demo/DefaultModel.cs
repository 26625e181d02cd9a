using System.Text.Json;
using LoraMixer.Data;
using LoraMixer.IO;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
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

    /// <summary>Where the cached model lives: <c>$LORAMIXER_CACHE</c> or <c>~/.cache/loramixer</c>, then <c>default-model-v1</c>.</summary>
    public static string CacheDir()
    {
        string root = Environment.GetEnvironmentVariable("LORAMIXER_CACHE") is { Length: > 0 } env
            ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "loramixer");
        return Path.Combine(root, "default-model-" + Version);
    }

    /// <summary>True when <paramref name="dir"/> holds a complete model folder.</summary>
    public static bool Exists(string dir) =>
        File.Exists(Path.Combine(dir, "config.json")) && File.Exists(Path.Combine(dir, "model.safetensors"))
        && File.Exists(Path.Combine(dir, "tokenizer.json"));

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
            using var model = new LlamaForCausalLM(Config, device);
            var parameters = model.named_parameters().Select(p => new KeyValuePair<string, TorchSharp.Modules.Parameter>(p.name, p.parameter)).ToArray();
            // HF Llama's initialisation: every matrix N(0, 0.02), norms at 1 (TorchSharp's defaults would give
            // the tied embedding N(0, 1) rows and logits far too large to train from).
            using (no_grad())
                foreach (var (_, p) in parameters)
                    if (p.dim() == 2) p.normal_(0, 0.02);
            model.train();
            var objective = new CausalLmObjective(model, parameters, data.Train, data.Eval, fine.BatchSize, fine.Trainer.Seed, DemoTokenizer.PadId);
            var summary = new Trainer(fine.Trainer, objective).Run(progress, ct);
            if (summary.Interrupted) return summary;
            model.eval();
            SafeTensorsWriter.Write(Path.Combine(temp, "model.safetensors"),
                parameters.Select(p => new KeyValuePair<string, Tensor>(p.Key, p.Value.detach().cpu())),
                new Dictionary<string, string> { ["format"] = "pt" });
            var json = Config.ToJson();
            json["loramixer_pretraining"] = new System.Text.Json.Nodes.JsonObject
            {
                ["version"] = Version,
                ["steps"] = settings.Steps,
                ["documents"] = settings.Documents,
                ["seed"] = settings.Seed,
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
