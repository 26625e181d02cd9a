using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LoraMixer.Errors;
using LoraMixer.IO;

namespace LoraMixer.Lora;

/// <summary>
/// A PEFT LoRA <c>adapter_config.json</c>: which modules carry a LoRA, their rank and scale. Field names
/// follow PEFT (<c>r</c>, <c>lora_alpha</c>, <c>target_modules</c>, ...), and matching follows PEFT's rules
/// exactly, so an adapter selects the same modules here as in Python.
/// </summary>
public sealed record LoraConfig
{
    /// <summary>The file name PEFT gives the config inside an adapter folder.</summary>
    public const string FileName = "adapter_config.json";

    /// <summary><c>peft_type</c>; always <c>LORA</c> (other PEFT methods are rejected at load).</summary>
    public string PeftType => "LORA";

    /// <summary><c>r</c>: the default rank of every adapted module.</summary>
    public required int R { get; init; }

    /// <summary><c>lora_alpha</c>: the default alpha; the scale is alpha / r (or alpha / √r with rsLoRA).</summary>
    public required double LoraAlpha { get; init; }

    /// <summary>
    /// <c>target_modules</c> given as a list: a module is adapted when its name equals an entry or ends
    /// with "." + entry. Empty when <see cref="TargetModulesRegex"/> is set.
    /// </summary>
    public IReadOnlyList<string> TargetModules { get; init; } = Array.Empty<string>();

    /// <summary><c>target_modules</c> given as a string: a regex that must match the whole module name.</summary>
    public string? TargetModulesRegex { get; init; }

    /// <summary><c>rank_pattern</c>: per-module rank overrides, pattern → rank, first match in order wins.</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();

    /// <summary><c>alpha_pattern</c>: per-module alpha overrides, pattern → alpha, first match in order wins.</summary>
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();

    /// <summary><c>use_rslora</c>: scale by alpha / √r instead of alpha / r.</summary>
    public bool UseRslora { get; init; }

    /// <summary><c>lora_dropout</c>: dropout on the LoRA input while training.</summary>
    public double LoraDropout { get; init; }

    /// <summary><c>bias</c>: <c>none</c>, <c>all</c> or <c>lora_only</c> (which biases the adapter saves).</summary>
    public string Bias { get; init; } = "none";

    /// <summary><c>base_model_name_or_path</c>: the model the adapter was trained on.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary><c>task_type</c>, e.g. <c>CAUSAL_LM</c>.</summary>
    public string? TaskType { get; init; } = "CAUSAL_LM";

    /// <summary>Reads <c>adapter_config.json</c> from an adapter folder.</summary>
    /// <exception cref="ModelFormatException">The file is missing, not JSON, or not a supported LoRA config.</exception>
    public static LoraConfig Load(string adapterDir)
    {
        ArgumentNullException.ThrowIfNull(adapterDir);
        string file = Path.Combine(adapterDir, FileName);
        if (!Directory.Exists(adapterDir))
            throw new ModelFormatException($"adapter folder {adapterDir} does not exist; check the path");
        if (!File.Exists(file))
            throw new ModelFormatException($"{adapterDir} is not a PEFT LoRA adapter: {FileName} is missing");
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(file)) as JsonObject
                ?? throw new ModelFormatException($"{file}: expected a JSON object; the adapter config is damaged");
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{file}: invalid JSON ({e.Message}); the adapter config is damaged", e);
        }
        return FromJson(json, file);
    }

    /// <summary>Builds and validates the config from parsed JSON; <paramref name="file"/> names the source in errors. Unknown fields are ignored.</summary>
    /// <exception cref="ModelFormatException">A field is missing, mistyped or unsupported.</exception>
    public static LoraConfig FromJson(JsonObject json, string file)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(file);
        string peftType = ReadString(json, "peft_type", file)
            ?? throw new ModelFormatException($"{file}: 'peft_type' is missing; a LoRA adapter config has \"peft_type\": \"LORA\"");
        if (peftType != "LORA")
            throw new ModelFormatException($"{file}: peft_type is '{peftType}', but only LORA adapters are supported; use a LoRA adapter");
        if (ReadBool(json, "fan_in_fan_out", file) == true)
            throw new ModelFormatException($"{file}: fan_in_fan_out=true (GPT-2 Conv1D layout) is not supported; use an adapter for a model with nn.Linear layers");
        if (ReadBool(json, "use_dora", file) == true)
            throw new ModelFormatException($"{file}: use_dora=true (DoRA) is not supported; use a plain LoRA adapter");
        if (json["layers_to_transform"] is not null)
            throw new ModelFormatException($"{file}: layers_to_transform is not supported; remove it and list the modules in target_modules instead");

        var config = new LoraConfig
        {
            R = ReadInt(json, "r", file) ?? throw new ModelFormatException($"{file}: required field 'r' (the LoRA rank) is missing"),
            LoraAlpha = ReadNumber(json, "lora_alpha", file) ?? throw new ModelFormatException($"{file}: required field 'lora_alpha' is missing"),
            TargetModules = json["target_modules"] is JsonArray list ? StringList(list, "target_modules", file) : Array.Empty<string>(),
            TargetModulesRegex = json["target_modules"] is JsonArray ? null
                : ReadString(json, "target_modules", file)
                  ?? throw new ModelFormatException($"{file}: 'target_modules' is missing; give a list of module names or a regex"),
            RankPattern = Pattern(json, "rank_pattern", file, node => IntOf(node) ?? throw new ModelFormatException(
                $"{file}: rank_pattern values must be whole numbers, got {node.ToJsonString()}")),
            AlphaPattern = Pattern(json, "alpha_pattern", file, node => NumberOf(node) ?? throw new ModelFormatException(
                $"{file}: alpha_pattern values must be numbers, got {node.ToJsonString()}")),
            UseRslora = ReadBool(json, "use_rslora", file) ?? false,
            LoraDropout = ReadNumber(json, "lora_dropout", file) ?? 0.0,
            Bias = ReadString(json, "bias", file) ?? "none",
            BaseModelNameOrPath = ReadString(json, "base_model_name_or_path", file),
            TaskType = ReadString(json, "task_type", file),
        };
        config.Validate(file);
        return config;
    }

    /// <summary>
    /// Checks the values (rank ≥ 1, alpha &gt; 0, a known bias mode, valid regexes) and throws
    /// <see cref="ModelFormatException"/> naming <paramref name="source"/> on the first problem.
    /// </summary>
    public void Validate(string source)
    {
        if (R < 1) throw new ModelFormatException($"{source}: r is {R}, but the rank must be ≥ 1");
        if (!(LoraAlpha > 0) || !double.IsFinite(LoraAlpha))
            throw new ModelFormatException($"{source}: lora_alpha is {Format(LoraAlpha)}, but it must be > 0");
        foreach (var (pattern, rank) in RankPattern)
            if (rank < 1) throw new ModelFormatException($"{source}: rank_pattern '{pattern}' gives rank {rank}, but the rank must be ≥ 1");
        foreach (var (pattern, alpha) in AlphaPattern)
            if (!(alpha > 0) || !double.IsFinite(alpha))
                throw new ModelFormatException($"{source}: alpha_pattern '{pattern}' gives alpha {Format(alpha)}, but it must be > 0");
        if (Bias is not ("none" or "all" or "lora_only"))
            throw new ModelFormatException($"{source}: bias is '{Bias}'; use none, all or lora_only");
        if (!(LoraDropout >= 0 && LoraDropout < 1))
            throw new ModelFormatException($"{source}: lora_dropout is {Format(LoraDropout)}; it must be in [0, 1)");
        if (TargetModulesRegex is null && TargetModules.Count == 0)
            throw new ModelFormatException($"{source}: target_modules is empty; name the modules to adapt (e.g. [\"q_proj\", \"v_proj\"])");
        if (TargetModulesRegex is not null && TargetModules.Count > 0)
            throw new ModelFormatException($"{source}: target_modules is both a list and a regex; set only one");
        foreach (string pattern in (TargetModulesRegex is null ? Array.Empty<string>() : new[] { TargetModulesRegex })
                     .Concat(RankPattern.Keys).Concat(AlphaPattern.Keys))
        {
            try
            {
                _ = new Regex(pattern, RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e)
            {
                throw new ModelFormatException($"{source}: '{pattern}' is not a valid regular expression ({e.Message}); fix the pattern", e);
            }
        }
    }

    /// <summary>PEFT's <c>check_target_module_exists</c>: does this config adapt the module?</summary>
    public bool IsTarget(string moduleName)
    {
        ArgumentNullException.ThrowIfNull(moduleName);
        if (TargetModulesRegex is not null)
            return Regex.IsMatch(moduleName, $"\\A(?:{TargetModulesRegex})\\z", RegexOptions.CultureInvariant);
        return TargetModules.Any(t => moduleName == t || moduleName.EndsWith("." + t, StringComparison.Ordinal));
    }

    /// <summary>
    /// This config narrowed to <paramref name="modules"/> (full names it selects), so that it targets exactly
    /// what an adapter keeps: list entries that select none of them are removed; a regex becomes the list of
    /// the names themselves. Ranks, alphas and the rest are unchanged.
    /// </summary>
    /// <exception cref="ArgumentException">A name is not selected by this config, or none is given.</exception>
    public LoraConfig RestrictedTo(IReadOnlyCollection<string> modules)
    {
        ArgumentNullException.ThrowIfNull(modules);
        if (modules.Count == 0) throw new ArgumentException("an adapter config must select at least one module", nameof(modules));
        var foreign = modules.FirstOrDefault(m => !IsTarget(m));
        if (foreign is not null) throw new ArgumentException($"module '{foreign}' is not selected by this config", nameof(modules));
        if (TargetModulesRegex is not null)
            return this with { TargetModulesRegex = null, TargetModules = modules.Order(StringComparer.Ordinal).ToArray() };
        return this with
        {
            TargetModules = TargetModules.Where(t => modules.Any(m => m == t || m.EndsWith("." + t, StringComparison.Ordinal))).ToArray(),
        };
    }

    /// <summary>The rank of a module: the first matching <see cref="RankPattern"/> entry, else <see cref="R"/>.</summary>
    public int RankFor(string moduleName) =>
        PatternKey(RankPattern.Keys, moduleName) is string key ? RankPattern[key] : R;

    /// <summary>The alpha of a module: the first matching <see cref="AlphaPattern"/> entry, else <see cref="LoraAlpha"/>.</summary>
    public double AlphaFor(string moduleName) =>
        PatternKey(AlphaPattern.Keys, moduleName) is string key ? AlphaPattern[key] : LoraAlpha;

    /// <summary>The LoRA scale of a module: alpha / r, or alpha / √r with rsLoRA.</summary>
    public double ScalingFor(string moduleName)
    {
        int rank = RankFor(moduleName);
        double alpha = AlphaFor(moduleName);
        return UseRslora ? alpha / Math.Sqrt(rank) : alpha / rank;
    }

    /// <summary>Writes <c>adapter_config.json</c> into <paramref name="adapterDir"/> atomically, with PEFT's field names and layout.</summary>
    public void Save(string adapterDir)
    {
        ArgumentNullException.ThrowIfNull(adapterDir);
        Validate(Path.Combine(adapterDir, FileName));
        byte[] bytes = ToJsonBytes();
        AtomicFile.Write(Path.Combine(adapterDir, FileName), stream => stream.Write(bytes));
    }

    /// <summary>PEFT-compatible JSON (keys sorted and indented by 2, as PEFT's <c>save_pretrained</c> writes them).</summary>
    internal byte[] ToJsonBytes()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteStartObject("alpha_pattern");
            foreach (var (pattern, alpha) in AlphaPattern) WriteNumber(json, pattern, alpha);
            json.WriteEndObject();
            if (BaseModelNameOrPath is null) json.WriteNull("base_model_name_or_path");
            else json.WriteString("base_model_name_or_path", BaseModelNameOrPath);
            json.WriteString("bias", Bias);
            json.WriteBoolean("fan_in_fan_out", false);
            json.WriteBoolean("inference_mode", true);
            json.WriteBoolean("init_lora_weights", true);
            json.WriteNull("layers_pattern");
            json.WriteNull("layers_to_transform");
            WriteNumber(json, "lora_alpha", LoraAlpha);
            WriteNumber(json, "lora_dropout", LoraDropout);
            json.WriteNull("modules_to_save");
            json.WriteString("peft_type", PeftType);
            json.WriteNumber("r", R);
            json.WriteStartObject("rank_pattern");
            foreach (var (pattern, rank) in RankPattern) json.WriteNumber(pattern, rank);
            json.WriteEndObject();
            if (TargetModulesRegex is not null) json.WriteString("target_modules", TargetModulesRegex);
            else
            {
                json.WriteStartArray("target_modules");
                foreach (string target in TargetModules) json.WriteStringValue(target);
                json.WriteEndArray();
            }
            if (TaskType is null) json.WriteNull("task_type");
            else json.WriteString("task_type", TaskType);
            json.WriteBoolean("use_rslora", UseRslora);
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    // PEFT's get_pattern_key: the first key p (in order) for which the module name matches ^(.*\.)?(p)$.
    private static string? PatternKey(IEnumerable<string> patterns, string moduleName)
    {
        ArgumentNullException.ThrowIfNull(moduleName);
        return patterns.FirstOrDefault(p => Regex.IsMatch(moduleName, $"\\A(.*\\.)?({p})$", RegexOptions.CultureInvariant));
    }

    // Whole numbers as JSON integers (lora_alpha 16, not 16.0), as Python writes an int.
    private static void WriteNumber(Utf8JsonWriter json, string name, double value)
    {
        if (value == Math.Floor(value) && Math.Abs(value) < 1e15) json.WriteNumber(name, (long)value);
        else json.WriteNumber(name, value);
    }

    private static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static double? NumberOf(JsonNode node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.Number
            ? double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture)
            : null;

    private static int? IntOf(JsonNode node) =>
        NumberOf(node) is double x && x == Math.Floor(x) && Math.Abs(x) <= int.MaxValue ? (int)x : null;

    private static double? ReadNumber(JsonObject json, string key, string file)
    {
        JsonNode? node = json[key];
        if (node is null) return null;
        return NumberOf(node) is double d && double.IsFinite(d) ? d
            : throw new ModelFormatException($"{file}: field '{key}' must be a number, got {node.ToJsonString()}");
    }

    private static int? ReadInt(JsonObject json, string key, string file)
    {
        JsonNode? node = json[key];
        if (node is null) return null;
        return IntOf(node) ?? throw new ModelFormatException($"{file}: field '{key}' must be a whole number, got {node.ToJsonString()}");
    }

    private static bool? ReadBool(JsonObject json, string key, string file)
    {
        JsonNode? node = json[key];
        if (node is null) return null;
        return node is JsonValue v && v.TryGetValue(out bool b) ? b
            : throw new ModelFormatException($"{file}: field '{key}' must be true or false, got {node.ToJsonString()}");
    }

    private static string? ReadString(JsonObject json, string key, string file)
    {
        JsonNode? node = json[key];
        if (node is null) return null;
        return node is JsonValue v && v.TryGetValue(out string? s) ? s
            : throw new ModelFormatException($"{file}: field '{key}' must be a string, got {node.ToJsonString()}");
    }

    private static string[] StringList(JsonArray list, string key, string file) =>
        list.Select(item => item is JsonValue v && v.TryGetValue(out string? s) ? s
            : throw new ModelFormatException($"{file}: '{key}' must hold strings, got {list.ToJsonString()}")).ToArray();

    private static IReadOnlyDictionary<string, T> Pattern<T>(JsonObject json, string key, string file, Func<JsonNode, T> value)
    {
        // Ordered: PEFT takes the first matching key in the dict's insertion order.
        var result = new OrderedDictionary<string, T>(StringComparer.Ordinal);
        switch (json[key])
        {
            case null:
                return result;
            case JsonObject patterns:
                foreach (var (pattern, node) in patterns)
                    result[pattern] = node is null
                        ? throw new ModelFormatException($"{file}: {key} '{pattern}' has no value")
                        : value(node);
                return result;
            case var other:
                throw new ModelFormatException($"{file}: '{key}' must be an object of pattern → value, got {other.ToJsonString()}");
        }
    }
}
