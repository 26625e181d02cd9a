using LoraMixer.Errors;
using LoraMixer.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Lora;

/// <summary>
/// A Hugging Face PEFT LoRA adapter folder (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>):
/// its config and the LoRA weights of every adapted module. Folders this class saves load unchanged in
/// PEFT (<c>PeftModel.from_pretrained</c>), and PEFT's folders load here.
/// </summary>
public sealed class PeftAdapter : IDisposable
{
    /// <summary>The weights file name PEFT uses.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    private const string PickleFileName = "adapter_model.bin";

    private readonly SortedDictionary<string, LoraWeights> _modules;

    private PeftAdapter(string name, string directory, LoraConfig config, SortedDictionary<string, LoraWeights> modules)
    {
        Name = name;
        Directory = directory;
        Config = config;
        _modules = modules;
    }

    /// <summary>The adapter's name (by default its folder name); mixers call experts by it.</summary>
    public string Name { get; }

    /// <summary>The folder it was loaded from; empty for an adapter built in memory.</summary>
    public string Directory { get; }

    /// <summary>The parsed <c>adapter_config.json</c>.</summary>
    public LoraConfig Config { get; }

    /// <summary>LoRA weights by module name (e.g. <c>model.layers.0.self_attn.q_proj</c>), in ordinal order.</summary>
    public IReadOnlyDictionary<string, LoraWeights> Modules => _modules;

    /// <summary>Loads and validates an adapter folder.</summary>
    /// <param name="dir">The folder holding <c>adapter_config.json</c> and <c>adapter_model.safetensors</c>.</param>
    /// <param name="name">The adapter's name; defaults to the folder name.</param>
    /// <exception cref="ModelFormatException">The folder is missing, not a PEFT LoRA adapter, or its weights disagree with its config.</exception>
    public static PeftAdapter Load(string dir, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(dir);
        if (!System.IO.Directory.Exists(dir))
            throw new ModelFormatException(File.Exists(dir)
                ? $"{dir} is a file; pass the PEFT adapter folder that holds {LoraConfig.FileName} and {WeightsFileName}"
                : $"adapter folder {dir} does not exist; check the path");
        LoraConfig config = LoraConfig.Load(dir);
        string weightsPath = Path.Combine(dir, WeightsFileName);
        if (!File.Exists(weightsPath))
            throw new ModelFormatException(File.Exists(Path.Combine(dir, PickleFileName))
                ? $"{dir} holds {PickleFileName}, but pickle .bin adapters are not supported; convert with safetensors (in Python: PeftModel.from_pretrained(...).save_pretrained(dir, safe_serialization=True))"
                : $"{dir} is not a complete PEFT LoRA adapter: {WeightsFileName} is missing");

        var modules = new SortedDictionary<string, LoraWeights>(StringComparer.Ordinal);
        try
        {
            using var file = SafeTensorsFile.Open(weightsPath);
            var parts = new SortedDictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
            foreach (var (key, info) in file.Tensors)
            {
                var parsed = PeftKeys.Parse(key)
                    ?? throw new ModelFormatException(
                        $"{weightsPath}: tensor '{key}' is not a LoRA weight (expected {PeftKeys.Prefix}<module>.lora_A.weight / lora_B.weight); modules_to_save, embedding LoRAs and DoRA are not supported");
                if (info.DType is not (SafeTensorsDType.F32 or SafeTensorsDType.F16 or SafeTensorsDType.BF16))
                    throw new ModelFormatException($"{weightsPath}: tensor '{key}' has dtype {info.DType}; LoRA weights must be F32, F16 or BF16");
                if (!parts.TryGetValue(parsed.Module, out var byPart)) parts[parsed.Module] = byPart = new Dictionary<string, string>();
                if (byPart.TryGetValue(parsed.Part, out string? previous))
                    throw new ModelFormatException($"{weightsPath}: module '{parsed.Module}' has two {parsed.Part} tensors ('{previous}' and '{key}'); keep one");
                byPart[parsed.Part] = key;
            }
            if (parts.Count == 0)
                throw new ModelFormatException($"{weightsPath} holds no LoRA weights; the adapter is empty or damaged");

            foreach (var (module, byPart) in parts)
            {
                string where = $"{weightsPath}: module '{module}'";
                if (!byPart.ContainsKey(PeftKeys.LoraA) && !byPart.ContainsKey(PeftKeys.LoraB) && config.Bias == "all")
                    throw new ModelFormatException(
                        $"{where} has only a bias ('{byPart[PeftKeys.Bias]}'): {LoraConfig.FileName} field \"bias\" is \"all\", which also saves biases of modules without a LoRA; those are not supported, use an adapter trained with \"bias\": \"none\"");
                if (!byPart.TryGetValue(PeftKeys.LoraA, out string? aKey) || !byPart.TryGetValue(PeftKeys.LoraB, out string? bKey))
                {
                    string has = byPart.ContainsKey(PeftKeys.LoraA) ? "lora_A" : byPart.ContainsKey(PeftKeys.LoraB) ? "lora_B" : "only a bias";
                    string lacks = byPart.ContainsKey(PeftKeys.LoraA) ? "lora_B" : byPart.ContainsKey(PeftKeys.LoraB) ? "lora_A" : "lora_A and lora_B";
                    throw new ModelFormatException($"{where} has {has} but no {lacks}; the weights file is incomplete, save the adapter again");
                }
                long[] a = file.Tensors[aKey].Shape, b = file.Tensors[bKey].Shape;
                if (a.Length != 2 || b.Length != 2)
                    throw new ModelFormatException($"{where}: lora_A {Format(a)} and lora_B {Format(b)} must both be matrices");
                if (a[0] != b[1])
                    throw new ModelFormatException(
                        $"{where}: lora_A {Format(a)} has rank {a[0]} but lora_B {Format(b)} has rank {b[1]}; A must be [r, in] and B [out, r]");
                if (!config.IsTarget(module))
                    throw new ModelFormatException(
                        $"{where} is not selected by target_modules {TargetsText(config)} in {LoraConfig.FileName}; the config and the weights disagree");
                int expectedRank = config.RankFor(module);
                if (a[0] != expectedRank)
                    throw new ModelFormatException(
                        $"{where} has rank {a[0]} in the weights but {LoraConfig.FileName} gives rank {expectedRank} (r / rank_pattern); fix r or rank_pattern");
                string? biasKey = byPart.GetValueOrDefault(PeftKeys.Bias);
                if (biasKey is not null && config.Bias == "none")
                    throw new ModelFormatException($"{where} has a bias tensor '{biasKey}' but {LoraConfig.FileName} says bias \"none\"; set bias to \"all\" or \"lora_only\"");
                if (biasKey is not null && (file.Tensors[biasKey].Shape is not { Length: 1 } bs || bs[0] != b[0]))
                    throw new ModelFormatException($"{where}: bias {Format(file.Tensors[biasKey].Shape)} does not match lora_B {Format(b)}; expected [{b[0]}]");

                using var scope = torch.NewDisposeScope();
                modules[module] = new LoraWeights(Finite(aKey), Finite(bKey), config.ScalingFor(module), config.AlphaFor(module),
                    biasKey is null ? null : Finite(biasKey));

                // NaN or infinite weights would load and turn every logit into NaN.
                Tensor Finite(string key)
                {
                    var t = file.Read(key);
                    if (!t.isfinite().all().item<bool>())
                        throw new ModelFormatException(
                            $"adapter {name ?? FolderName(dir)}: tensor '{key}' in {weightsPath} holds NaN or infinite values; the adapter is damaged, train or export it again");
                    return t;
                }
            }
        }
        catch
        {
            foreach (LoraWeights weights in modules.Values) weights.Dispose();
            throw;
        }
        return new PeftAdapter(name ?? FolderName(dir), dir, config, modules);
    }

    /// <summary>Builds an adapter in memory; it takes ownership of <paramref name="modules"/>' tensors.</summary>
    /// <exception cref="ArgumentException">The config is invalid, or a module is not a target of it or has a different rank than it gives.</exception>
    public static PeftAdapter Create(string name, LoraConfig config, IReadOnlyDictionary<string, LoraWeights> modules)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(modules);
        try
        {
            config.Validate($"adapter '{name}'");
        }
        catch (ModelFormatException e)
        {
            throw new ArgumentException(e.Message, nameof(config), e);
        }
        if (modules.Count == 0) throw new ArgumentException($"adapter '{name}' has no modules", nameof(modules));
        foreach (var (module, weights) in modules)
        {
            if (!config.IsTarget(module))
                throw new ArgumentException($"adapter '{name}': module '{module}' is not selected by target_modules {TargetsText(config)}", nameof(modules));
            if (weights.Rank != config.RankFor(module))
                throw new ArgumentException($"adapter '{name}': module '{module}' has rank {weights.Rank} but the config gives rank {config.RankFor(module)}", nameof(modules));
            if (weights.Bias is not null && config.Bias == "none")
                throw new ArgumentException($"adapter '{name}': module '{module}' has a bias but the config says bias \"none\"", nameof(modules));
        }
        return new PeftAdapter(name, string.Empty, config,
            new SortedDictionary<string, LoraWeights>(modules.ToDictionary(m => m.Key, m => m.Value), StringComparer.Ordinal));
    }

    /// <summary>
    /// Writes <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> (PEFT's keys, contiguous
    /// float32) so that a crash never leaves a half adapter: a new folder is written beside the target and
    /// renamed into place; an existing folder loses its config first and gets it back last.
    /// </summary>
    public void Save(string dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        Config.Validate(Path.Combine(dir, LoraConfig.FileName));
        string full = Path.GetFullPath(dir);
        if (System.IO.Directory.Exists(full))
        {
            // Without its config the folder is "not an adapter" (a clear error), never new weights under an old config.
            File.Delete(Path.Combine(full, LoraConfig.FileName));
            WriteInto(full);
            return;
        }
        string parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"{dir} has no parent folder", nameof(dir));
        System.IO.Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            System.IO.Directory.CreateDirectory(temp);
            WriteInto(temp);
            System.IO.Directory.Move(temp, full);
        }
        catch
        {
            try
            {
                if (System.IO.Directory.Exists(temp)) System.IO.Directory.Delete(temp, recursive: true);
            }
            catch (IOException)
            {
                // The original failure matters more than a leftover temporary folder.
            }
            throw;
        }
    }

    /// <summary>
    /// Checks that the adapter fits a base model: every module exists as <c>&lt;module&gt;.weight</c> with
    /// shape [out, in], and A is [r, in], B is [out, r].
    /// </summary>
    /// <param name="baseWeightShapes">Shapes of the base model's tensors by name (e.g. from <c>LlamaLoader.ExpectedShapes</c>).</param>
    /// <param name="baseDescription">How errors name the base model, e.g. its folder.</param>
    /// <exception cref="AdapterMismatchException">A module is missing from the base model or its shapes differ.</exception>
    public void CheckAgainst(IReadOnlyDictionary<string, long[]> baseWeightShapes, string baseDescription)
    {
        ArgumentNullException.ThrowIfNull(baseWeightShapes);
        ArgumentNullException.ThrowIfNull(baseDescription);
        foreach (var (module, weights) in _modules)
        {
            string key = module + ".weight";
            if (!baseWeightShapes.TryGetValue(key, out long[]? shape))
            {
                var similar = SimilarModules(module, baseWeightShapes.Keys);
                throw new AdapterMismatchException(
                    $"adapter '{Name}' adapts module '{module}', which {baseDescription} does not have"
                    + (similar.Count > 0 ? $" (similar modules there: {string.Join(", ", similar)})" : "")
                    + "; use an adapter trained for this base model");
            }
            long[] a = weights.A.shape, b = weights.B.shape;
            if (shape.Length != 2 || a[1] != shape[1] || b[0] != shape[0])
                throw new AdapterMismatchException(
                    $"adapter '{Name}' module '{module}' has lora_A {Format(a)} and lora_B {Format(b)}, but {baseDescription} has weight {Format(shape)} [out, in]; use an adapter trained for this base model");
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (LoraWeights weights in _modules.Values) weights.Dispose();
    }

    private void WriteInto(string folder)
    {
        using (var scope = torch.NewDisposeScope())
        {
            var tensors = new List<KeyValuePair<string, Tensor>>();
            foreach (var (module, weights) in _modules)
            {
                tensors.Add(new(PeftKeys.LoraAKey(module), Stored(weights.A)));
                tensors.Add(new(PeftKeys.LoraBKey(module), Stored(weights.B)));
                if (weights.Bias is not null) tensors.Add(new(PeftKeys.BiasKey(module), Stored(weights.Bias)));
            }
            tensors.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));
            SafeTensorsWriter.Write(Path.Combine(folder, WeightsFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        }
        Config.Save(folder); // last: the folder counts as an adapter only once the weights are complete
    }

    private static Tensor Stored(Tensor t) => t.detach().to(ScalarType.Float32, CPU).contiguous();

    private static IReadOnlyList<string> SimilarModules(string module, IEnumerable<string> baseNames)
    {
        var candidates = baseNames.Where(n => n.EndsWith(".weight", StringComparison.Ordinal))
            .Select(n => n[..^".weight".Length]).ToList();
        string last = module[(module.LastIndexOf('.') + 1)..];
        var sameLeaf = candidates.Where(c => c == last || c.EndsWith("." + last, StringComparison.Ordinal))
            .OrderBy(c => c, StringComparer.Ordinal).Take(3).ToList();
        if (sameLeaf.Count > 0) return sameLeaf;
        return candidates.OrderByDescending(c => CommonPrefix(c, module)).ThenBy(c => c, StringComparer.Ordinal).Take(3).ToList();
    }

    private static int CommonPrefix(string x, string y)
    {
        int n = 0;
        while (n < x.Length && n < y.Length && x[n] == y[n]) n++;
        return n;
    }

    private static string TargetsText(LoraConfig config) =>
        config.TargetModulesRegex is string regex ? $"'{regex}'" : $"[{string.Join(", ", config.TargetModules)}]";

    private static string Format(long[] shape) => $"[{string.Join(", ", shape)}]";

    private static string FolderName(string dir) =>
        Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)));
}
