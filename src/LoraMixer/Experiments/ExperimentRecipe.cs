using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Errors;

namespace LoraMixer.Experiments;

/// <summary>
/// What an experiment compares (a JSON recipe, snake_case keys): base model, tasks, sample counts of both
/// stages, rank, methods, seeds and evaluation sizes. Unknown keys are an error, so a typo never goes unnoticed.
/// </summary>
public sealed record ExperimentRecipe
{
    /// <summary>Name of the experiment (the run folder's default name).</summary>
    public required string Name { get; init; }
    /// <summary>"default" (the embedded default model of <see cref="Arch"/>, pretrained on first use) or a model folder.</summary>
    public string BaseModel { get; init; } = "default";
    /// <summary>Architecture of the default model: llama or mamba.</summary>
    public string Arch { get; init; } = "llama";
    /// <summary>Tasks: demo tasks (add, reverse, sort, lookup, sentiment) and benchmarks (sst2, cola, medqa, gsm8k, arc-e, arc-c).</summary>
    public required IReadOnlyList<string> Tasks { get; init; }
    /// <summary>Benchmark folder; null = <c>$LORAMIXER_DATA</c>.</summary>
    public string? DataDir { get; init; }
    /// <summary>Training samples per task (stage 1, and the union for the multi-task LoRA, MixLoRA and every stage 2).</summary>
    public int Stage1Samples { get; init; } = 400;
    /// <summary>Optimizer steps of stage 1 (the experts every expert-based method builds on).</summary>
    public int Stage1Steps { get; init; } = 600;
    /// <summary>Mixed samples for router training (stage 2).</summary>
    public int Stage2Samples { get; init; } = 1000;
    /// <summary>Optimizer steps of every stage 2 (routers, MoLE's gates).</summary>
    public int Stage2Steps { get; init; } = 300;

    /// <summary>
    /// The matched training budget, in optimizer steps of <see cref="BatchSize"/> samples: stage 1 + stage 2.
    /// A method that trains in one stage (multi-task LoRA, MixLoRA) gets all of it; a router method gets
    /// stage 1 (its experts) plus its own stage 2, so every trained method sees the same number of samples.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public int TotalSteps => Stage1Steps + Stage2Steps;
    /// <summary>LoRA rank of each expert.</summary>
    public int Rank { get; init; } = 8;
    /// <summary>Experts per token at inference.</summary>
    public int TopK { get; init; } = Mixing.RoutingSettings.DefaultTopK;
    /// <summary>Examples per batch.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Longest training sequence in tokens (longer examples are cut).</summary>
    public int MaxLength { get; init; } = 256;
    /// <summary>Learning rate of LoRA training.</summary>
    public double Lr { get; init; } = 3e-3;
    /// <summary>Learning rate of router training.</summary>
    public double RouterLr { get; init; } = 1e-2;
    /// <summary>Router design of the LoRA-Mixer methods (<see cref="Mixing.RouterPreset"/>: "default" or "paper").</summary>
    public string RouterPreset { get; init; } = Mixing.RouterPreset.Default.Name;
    /// <summary>Overrides the preset's router input (<c>token</c> or <c>causal_mean</c>); null = the preset's.</summary>
    public string? RouterInput { get; init; }
    /// <summary>Overrides the preset's router input normalisation (<c>none</c> or <c>standardize</c>); null = the preset's.</summary>
    public string? RouterInputNorm { get; init; }
    /// <summary>Overrides the preset's routing granularity (<c>token</c> or <c>sequence</c>); null = the preset's.</summary>
    public string? RoutingGranularity { get; init; }
    /// <summary>Overrides the preset's router supervision weight; null = the preset's.</summary>
    public double? RouterSupervision { get; init; }
    /// <summary>Overrides the preset's stage-2 routing (<c>soft</c> or <c>straight_through</c>); null = the preset's.</summary>
    public string? Stage2Routing { get; init; }
    /// <summary>Method ids (see <see cref="ExperimentMethods"/>), in table order.</summary>
    public IReadOnlyList<string> Methods { get; init; } = ExperimentMethods.All.Select(m => m.Id).ToArray();
    /// <summary>Seeds; each runs every method once (mean ± sd over seeds).</summary>
    public IReadOnlyList<int> Seeds { get; init; } = new[] { 0, 1, 2 };
    /// <summary>Benchmark test items per task (a deterministic subset, the same for every seed); null = all.</summary>
    public int? EvalLimit { get; init; } = 200;
    /// <summary>Held-out items per demo task.</summary>
    public int DemoTestPerTask { get; init; } = 50;

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
        WriteIndented = true,
    };

    /// <summary>Reads and checks a recipe file.</summary>
    /// <exception cref="DataFormatException">The file is missing, not JSON, or names something unknown.</exception>
    public static ExperimentRecipe Load(string path)
    {
        if (!File.Exists(path)) throw new DataFormatException($"recipe not found: {path} (a JSON file; see recipes/ for examples)");
        ExperimentRecipe? recipe;
        try
        {
            recipe = JsonSerializer.Deserialize<ExperimentRecipe>(File.ReadAllText(path), Json);
        }
        catch (JsonException e)
        {
            throw new DataFormatException($"{path}: {e.Message}");
        }
        if (recipe is null) throw new DataFormatException($"{path}: empty recipe");
        try
        {
            recipe.Validate();
        }
        catch (ArgumentException e)
        {
            throw new DataFormatException($"{path}: {e.Message}");
        }
        return recipe;
    }

    /// <summary>Checks names and sizes.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name)) throw new ArgumentException("name is empty");
        if (Arch is not ("llama" or "mamba")) throw new ArgumentException($"arch must be llama or mamba, got '{Arch}'");
        if (Tasks.Count < 2) throw new ArgumentException("tasks: name at least two tasks (one expert each)");
        foreach (var t in Tasks) ExperimentTasks.Check(t);
        if (Tasks.Distinct().Count() != Tasks.Count) throw new ArgumentException("tasks: a task is named twice");
        if (Methods.Count == 0) throw new ArgumentException("methods: name at least one method");
        foreach (var m in Methods) ExperimentMethods.Get(m);
        if (Seeds.Count == 0) throw new ArgumentException("seeds: name at least one seed");
        foreach (var (value, name) in new[] { (Stage1Samples, "stage1_samples"), (Stage1Steps, "stage1_steps"), (Stage2Samples, "stage2_samples"),
                     (Stage2Steps, "stage2_steps"), (Rank, "rank"), (TopK, "top_k"), (BatchSize, "batch_size"), (MaxLength, "max_length"), (DemoTestPerTask, "demo_test_per_task") })
            if (value < 1) throw new ArgumentException($"{name} must be at least 1, got {value}");
        try
        {
            new Mixing.RoutingSettings(Mixing.RoutingMode.TopK, TopK).Validate(Tasks.Count);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException(e.Message.Replace("top-k", "top_k"), e);
        }
        if (!Mixing.RouterPreset.All.Any(p => p.Name == RouterPreset))
            throw new ArgumentException($"router_preset must be one of {string.Join(", ", Mixing.RouterPreset.All.Select(p => p.Name))}, got '{RouterPreset}'");
        Preset();
        if (EvalLimit is < 1) throw new ArgumentException($"eval_limit must be at least 1 (or null for all), got {EvalLimit}");
    }

    /// <summary>The router design of the LoRA-Mixer methods: <see cref="RouterPreset"/> with the recipe's overrides.</summary>
    public Mixing.RouterPreset Preset() =>
        Mixing.RouterPreset.Parse(RouterPreset).Override(RouterInput, RouterInputNorm, RoutingGranularity, RouterSupervision, Stage2Routing,
            ("router_input", "router_input_norm", "routing_granularity", "router_supervision", "stage2_routing"));

    /// <summary>This recipe with <paramref name="preset"/>'s router design written out in full (name and every field).</summary>
    public ExperimentRecipe WithPreset(Mixing.RouterPreset preset) => this with
    {
        RouterPreset = preset.Name,
        RouterInput = Mixing.RouterPreset.Spell(preset.Input),
        RouterInputNorm = Mixing.RouterPreset.Spell(preset.InputNorm),
        RoutingGranularity = Mixing.RouterPreset.Spell(preset.Granularity),
        RouterSupervision = preset.Supervision,
        Stage2Routing = Mixing.RouterPreset.Spell(preset.Stage2Routing),
    };

    /// <summary>The recipe as JSON (what the run folder keeps).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>
    /// SHA-256 of everything that shapes a result (the recipe without its seeds and methods): a run folder
    /// accepts more seeds or methods later, but not changed training settings.
    /// </summary>
    public string Hash() =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes((this with { Seeds = Array.Empty<int>(), Methods = Array.Empty<string>() }).ToJson())));
}
