namespace LoraMixer.Mixing;

/// <summary>
/// A router design with its stage-2 recipe, selectable as one switch (<c>--preset</c>): what block routers
/// read, how their input is normalised, the router supervision weight, the routing of stage-2 training and
/// its learning rate. docs/method.md §3–§5 and docs/routing.md give the reasons and the measurements.
/// </summary>
/// <param name="Name">The preset's name on the command line.</param>
/// <param name="Input">What block routers read.</param>
/// <param name="InputNorm">How the router input is normalised.</param>
/// <param name="Granularity">Whether routers decide per token or once per sequence.</param>
/// <param name="Supervision">Weight of the cross-entropy towards each sample's task expert (applied when the data names the experts' tasks).</param>
/// <param name="Stage2Routing">Routing during router training (soft or straight-through).</param>
/// <param name="Stage2LearningRate">Peak learning rate of router training.</param>
public sealed record RouterPreset(string Name, RouterInput Input, RouterInputNorm InputNorm, RoutingGranularity Granularity, double Supervision, RoutingMode Stage2Routing, double Stage2LearningRate)
{
    /// <summary>
    /// The defaults: routers read the token and the causal mean of its sequence, standardised, decide once per
    /// sequence at the end of its prompt (per token for data without prompts), and are supervised towards
    /// the task's expert when the data carries tasks (docs/routing.md).
    /// </summary>
    public static RouterPreset Default { get; } = new("default", RouterInput.CausalMean, RouterInputNorm.Standardize, RoutingGranularity.Sequence, 1.0, RoutingMode.Soft, 1e-2);

    /// <summary>The paper's router: the token's hidden state as it is, soft stage-2 routing, the RSL alone.</summary>
    public static RouterPreset Paper { get; } = new("paper", RouterInput.Token, RouterInputNorm.None, RoutingGranularity.Token, 0.0, RoutingMode.Soft, 1e-3);

    /// <summary>Every preset by name.</summary>
    public static IReadOnlyList<RouterPreset> All { get; } = new[] { Default, Paper };

    /// <summary>The preset named <paramref name="name"/>; an unknown name is an error listing the known ones.</summary>
    public static RouterPreset Parse(string name) =>
        All.FirstOrDefault(p => p.Name == name)
        ?? throw new ArgumentException($"--preset '{name}' is unknown; use one of {string.Join(", ", All.Select(p => p.Name))}");

    /// <summary>
    /// This preset with each given field replaced (null = keep): the spellings of the command line and of
    /// recipes; <paramref name="names"/> says how the caller names the five fields in errors (flags or JSON keys).
    /// </summary>
    public RouterPreset Override(string? input, string? inputNorm, string? granularity, double? supervision, string? stage2Routing,
        (string Input, string InputNorm, string Granularity, string Supervision, string Routing) names)
    {
        var preset = this;
        if (input is not null) preset = preset with { Input = ParseInput(input, names.Input) };
        if (inputNorm is not null) preset = preset with { InputNorm = ParseInputNorm(inputNorm, names.InputNorm) };
        if (granularity is not null) preset = preset with { Granularity = ParseGranularity(granularity, names.Granularity) };
        if (supervision is double weight)
        {
            if (!(weight >= 0) || double.IsInfinity(weight)) throw new ArgumentException($"{names.Supervision} must be a number ≥ 0, got {weight}");
            preset = preset with { Supervision = weight };
        }
        if (stage2Routing is not null)
            preset = preset with
            {
                Stage2Routing = stage2Routing switch
                {
                    "soft" => RoutingMode.Soft,
                    "straight_through" => RoutingMode.StraightThrough,
                    _ => throw new ArgumentException($"{names.Routing} must be soft or straight_through, got '{stage2Routing}'"),
                },
            };
        return preset;
    }

    /// <summary>The command-line spelling of a stage-2 routing mode (<c>soft</c> or <c>straight_through</c>).</summary>
    public static string Spell(RoutingMode stage2Routing) => stage2Routing == RoutingMode.StraightThrough ? "straight_through" : "soft";

    /// <summary>The command-line spelling of a router input.</summary>
    public static string Spell(RouterInput input) => input == RouterInput.CausalMean ? "causal_mean" : "token";

    /// <summary>The command-line spelling of a router input normalisation.</summary>
    public static string Spell(RouterInputNorm norm) => norm == RouterInputNorm.Standardize ? "standardize" : "none";

    /// <summary>The command-line spelling of a routing granularity.</summary>
    public static string Spell(RoutingGranularity granularity) => granularity == RoutingGranularity.Sequence ? "sequence" : "token";

    /// <summary>Parses <c>token</c> or <c>sequence</c>; <paramref name="option"/> names the source in errors.</summary>
    public static RoutingGranularity ParseGranularity(string value, string option) => value switch
    {
        "token" => RoutingGranularity.Token,
        "sequence" => RoutingGranularity.Sequence,
        _ => throw new ArgumentException($"{option} must be token or sequence, got '{value}'"),
    };

    /// <summary>Parses <c>token</c> or <c>causal_mean</c>; <paramref name="option"/> names the source in errors.</summary>
    public static RouterInput ParseInput(string value, string option) => value switch
    {
        "token" => RouterInput.Token,
        "causal_mean" => RouterInput.CausalMean,
        _ => throw new ArgumentException($"{option} must be token or causal_mean, got '{value}'"),
    };

    /// <summary>Parses <c>none</c> or <c>standardize</c>; <paramref name="option"/> names the source in errors.</summary>
    public static RouterInputNorm ParseInputNorm(string value, string option) => value switch
    {
        "none" => RouterInputNorm.None,
        "standardize" => RouterInputNorm.Standardize,
        _ => throw new ArgumentException($"{option} must be none or standardize, got '{value}'"),
    };
}
