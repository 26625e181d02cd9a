using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Errors;
using LoraMixer.IO;

namespace LoraMixer.Mixing;

/// <summary>
/// <c>mixer_config.json</c> (docs/method.md §7): the base model it was trained on, where experts sit, how
/// routers route, the experts, and the training settings used.
/// </summary>
public sealed record MixerConfig
{
    /// <summary>Format tag written into every mixer.</summary>
    public const string FormatTag = "loramixer.mixer/1";

    /// <summary>Base model path or name as given at training time.</summary>
    public required string BaseModel { get; init; }
    /// <summary>HF architecture of the base, e.g. <c>LlamaForCausalLM</c>.</summary>
    public required string Architecture { get; init; }
    /// <summary>Hidden size of the base, checked against the base at load; optional (it follows from the base and the router weights).</summary>
    public int? HiddenSize { get; init; }
    /// <summary>Number of blocks of the base, checked against the base at load; optional (it follows from the base and the router weights).</summary>
    public int? NumHiddenLayers { get; init; }
    /// <summary>Short names of the mixed projections.</summary>
    public IReadOnlyList<string> Targets { get; init; } = Lora.TargetLinears.AttentionProjections;
    /// <summary>Block (default) or per-projection routers.</summary>
    public RouterScope RouterScope { get; init; } = RouterScope.Block;
    /// <summary>What block routers read (absent in older configs: the token alone).</summary>
    public RouterInput RouterInput { get; init; } = RouterInput.Token;
    /// <summary>How the router input is normalised (absent in older configs: not at all).</summary>
    public RouterInputNorm RouterInputNorm { get; init; } = RouterInputNorm.None;
    /// <summary>Per-token or per-sequence routing (absent in older configs: per token).</summary>
    public RoutingGranularity RoutingGranularity { get; init; } = RoutingGranularity.Token;
    /// <summary>k of top-k inference.</summary>
    public int TopK { get; init; } = RoutingSettings.DefaultTopK;
    /// <summary>Whether the kept top-k weights are renormalised to sum 1.</summary>
    public bool Renormalize { get; init; } = true;
    /// <summary>Softmax temperature τ.</summary>
    public double RouterTemperature { get; init; } = 1.0;
    /// <summary>The experts, in router order.</summary>
    public required IReadOnlyList<MixerExpert> Experts { get; init; }
    /// <summary>Training settings used (free-form, recorded for reproducibility).</summary>
    public JsonObject Training { get; init; } = new();

    /// <summary>The inference routing this config asks for.</summary>
    public RoutingSettings InferenceRouting => new(RoutingMode.TopK, TopK, Renormalize, RouterTemperature);

    /// <summary>Reads <c>mixer_config.json</c> from a mixer folder.</summary>
    public static MixerConfig Load(string mixerDir)
    {
        string file = System.IO.Path.Combine(mixerDir, "mixer_config.json");
        if (!Directory.Exists(mixerDir)) throw new ModelFormatException($"mixer folder {mixerDir} does not exist");
        if (!File.Exists(file)) throw new ModelFormatException($"{mixerDir} is not a LoRA-Mixer folder: mixer_config.json is missing");
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(file)) as JsonObject
                ?? throw new ModelFormatException($"{file}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{file}: invalid JSON: {e.Message}", e);
        }
        return FromJson(json, file);
    }

    /// <summary>Parses the JSON of a mixer config; <paramref name="file"/> names it in errors.</summary>
    public static MixerConfig FromJson(JsonObject json, string file)
    {
        var read = HfConfigFile.Deserialize<MixerConfigJson>(json, file);
        int? Positive(int? value, string key) => value is < 1
            ? throw new ModelFormatException($"{file}: '{key}' is {value}; give the base model's value or leave the field out")
            : value;
        T Parsed<T>(Func<T> parse)
        {
            try
            {
                return parse();
            }
            catch (ArgumentException e)
            {
                throw new ModelFormatException($"{file}: {e.Message} (a mixer written by a newer LoraMixer?)", e);
            }
        }
        var experts = (read.Experts ?? throw new ModelFormatException($"{file}: 'experts' must be a list"))
            .Select((e, i) => e is { Name: string name, Path: string path }
                ? new MixerExpert(name, path)
                : throw new ModelFormatException($"{file}: experts[{i}] needs string fields 'name' and 'path'"))
            .ToArray();
        if (experts.Length == 0) throw new ModelFormatException($"{file}: the mixer has no experts");
        var config = new MixerConfig
        {
            BaseModel = read.BaseModel ?? "",
            Architecture = read.Architecture ?? throw new ModelFormatException($"{file}: 'architecture' must be a string"),
            HiddenSize = Positive(read.HiddenSize, "hidden_size"),
            NumHiddenLayers = Positive(read.NumHiddenLayers, "num_hidden_layers"),
            Targets = read.Targets ?? Lora.TargetLinears.AttentionProjections.ToArray(),
            RouterScope = (read.RouterScope ?? "block") switch
            {
                "block" => RouterScope.Block,
                "projection" => RouterScope.Projection,
                var scope => throw new ModelFormatException($"{file}: router_scope must be 'block' or 'projection', got '{scope}'"),
            },
            RouterInput = Parsed(() => RouterPreset.ParseInput(read.RouterInput ?? "token", "router_input")),
            RouterInputNorm = Parsed(() => RouterPreset.ParseInputNorm(read.RouterInputNorm ?? "none", "router_input_norm")),
            RoutingGranularity = Parsed(() => RouterPreset.ParseGranularity(read.RoutingGranularity ?? "token", "routing_granularity")),
            TopK = read.TopK ?? RoutingSettings.DefaultTopK,
            Renormalize = read.Renormalize ?? true,
            RouterTemperature = read.RouterTemperature ?? 1.0,
            Experts = experts,
            Training = read.Training is { } training ? (JsonObject)training.DeepClone() : new JsonObject(),
        };
        try
        {
            config.InferenceRouting.Validate(config.Experts.Count);
        }
        catch (ArgumentException e)
        {
            throw new ModelFormatException($"{file}: {e.Message.Replace("top-k", "top_k").Replace("router temperature", "router_temperature")}", e);
        }
        return config;
    }

    /// <summary>The config as JSON.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject { ["format"] = FormatTag, ["base_model"] = BaseModel, ["architecture"] = Architecture };
        if (HiddenSize is int hidden) json["hidden_size"] = hidden;
        if (NumHiddenLayers is int layers) json["num_hidden_layers"] = layers;
        json["targets"] = new JsonArray(Targets.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray());
        json["router_scope"] = RouterScope == RouterScope.Block ? "block" : "projection";
        json["router_input"] = RouterPreset.Spell(RouterInput);
        json["router_input_norm"] = RouterPreset.Spell(RouterInputNorm);
        json["routing_granularity"] = RouterPreset.Spell(RoutingGranularity);
        json["top_k"] = TopK;
        json["renormalize"] = Renormalize;
        json["router_temperature"] = RouterTemperature;
        json["experts"] = new JsonArray(Experts.Select(e => (JsonNode)new JsonObject { ["name"] = e.Name, ["path"] = e.Path }).ToArray());
        json["training"] = Training.DeepClone();
        return json;
    }

    /// <summary>Writes <c>mixer_config.json</c> atomically.</summary>
    public void Save(string mixerDir)
    {
        var text = ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        AtomicFile.Write(System.IO.Path.Combine(mixerDir, "mixer_config.json"), s =>
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(text);
            s.Write(bytes, 0, bytes.Length);
        });
    }
}
