using LoraMixer.Demo;
using LoraMixer.Generation;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Serving;

/// <summary>
/// Model folders the serving tests run: the tiny random fixtures with the demo's character tokenizer beside them
/// (the fixtures have none), their fixture mixers and PEFT experts, and reference outputs from <see cref="TextGenerator"/>.
/// </summary>
internal static class ServingFixtures
{
    private static readonly Lazy<string> LlamaDir = new(() => WithTokenizer("tiny-llama"));
    private static readonly Lazy<string> MambaDir = new(() => WithTokenizer("tiny-mamba"));

    /// <summary>tiny-llama (random weights, 2 layers, 256 positions) with a tokenizer.</summary>
    public static string Llama => LlamaDir.Value;

    /// <summary>tiny-mamba with a tokenizer.</summary>
    public static string Mamba => MambaDir.Value;

    /// <summary>The fixture mixer over tiny-llama (experts alpha, beta, gamma; top-2).</summary>
    public static string LlamaMixer => Path.Combine(TestPaths.Fixtures, "mixers", "tiny-llama-mixer");

    /// <summary>An expert of the fixture mixer as a PEFT adapter folder.</summary>
    public static string Expert(string name) => Path.Combine(LlamaMixer, "experts", name);

    public static readonly string[] Prompts =
    [
        "add 3 1:",
        "say hello to the whole world, then count",
        "x",
        "the quick brown fox jumps over the lazy dog again and again",
    ];

    private static string WithTokenizer(string fixture)
    {
        string dir = Path.Combine(TestPaths.NewTempDir(), fixture);
        Directory.CreateDirectory(dir);
        foreach (string file in Directory.GetFiles(Path.Combine(TestPaths.Fixtures, "models", fixture)))
            File.Copy(file, Path.Combine(dir, Path.GetFileName(file)));
        DemoTokenizer.WriteFiles(dir);
        return dir;
    }

    /// <summary>What <c>generate</c> produces for one prompt, optionally with an adapter merged or a mixer attached.</summary>
    public static GenerationResult Generate(string modelDir, string prompt, GenerationOptions options, string? adapter = null, string? mixer = null,
        Action<LoraMixerModel>? configure = null, IReadOnlyList<int>? promptIds = null, IEnumerable<int>? extraEos = null, bool kernel = true, bool int8 = false)
    {
        // On a thread of its own, like the CLI's main thread (decoding on xunit's test thread is several times slower).
        GenerationResult? result = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = GenerateHere(modelDir, prompt, options, adapter, mixer, configure, promptIds, extraEos, kernel, int8);
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        if (error is not null) throw new InvalidOperationException("reference generation failed: " + error.Message, error);
        return result!;
    }

    private static GenerationResult GenerateHere(string modelDir, string prompt, GenerationOptions options, string? adapter, string? mixer,
        Action<LoraMixerModel>? configure, IReadOnlyList<int>? promptIds, IEnumerable<int>? extraEos, bool kernel, bool int8)
    {
        using var model = ModelLoader.LoadCausalLM(modelDir);
        if (model is LlamaForCausalLM llama) llama.UseDecodeKernel = kernel;
        LoraMixerModel? attached = null;
        try
        {
            if (adapter is not null)
            {
                using var a = PeftAdapter.Load(adapter);
                AdapterInjector.Apply(model, a, merge: true);
            }
            if (mixer is not null)
            {
                attached = MixerCheckpoint.Load(model, mixer);
                configure?.Invoke(attached);
            }
            if (int8) LoraMixer.Quantization.Int8Quantizer.Quantize(model);
            var tokenizer = TokenizerLoader.Load(modelDir);
            var generator = new TextGenerator(model, tokenizer, ModelStructure.EosTokenIds(model).Concat(extraEos ?? []));
            return promptIds is null ? generator.Generate([prompt], options)[0] : generator.GenerateFromIds([promptIds], options)[0];
        }
        finally
        {
            attached?.Dispose();
        }
    }

    /// <summary>Greedy decoding of <paramref name="tokens"/> tokens that never stops early.</summary>
    public static GenerationOptions Greedy(int tokens) => new() { MaxNewTokens = tokens, StopAtEos = false };
}
