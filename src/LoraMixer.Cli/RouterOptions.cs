using System.CommandLine;
using LoraMixer.Mixing;

namespace LoraMixer.Cli;

/// <summary>
/// The router-design flags shared by <c>mixer train</c> and <c>demo</c>: <c>--preset</c> and the fields it sets,
/// each of which can be overridden on its own.
/// </summary>
internal sealed class RouterOptions
{
    private readonly Option<string> _preset = new("--preset")
    {
        Description = "Router design and stage-2 recipe: default (causal-mean input, standardised, one decision per sequence at the end of the prompt, supervised when the data names the experts' tasks) or paper",
        DefaultValueFactory = _ => RouterPreset.Default.Name,
    };
    private readonly Option<string?> _input = new("--router-input") { Description = "What block routers read: token or causal_mean (the token and the mean of its sequence so far)" };
    private readonly Option<string?> _inputNorm = new("--router-input-norm") { Description = "Router input normalisation: none or standardize (per feature, measured on the stage-2 data)" };
    private readonly Option<string?> _granularity = new("--routing-granularity") { Description = "token (every token routed on its own) or sequence (one decision per sequence, at the end of the prompt)" };
    private readonly Option<double?> _supervision = new("--router-supervision") { Description = "Weight of the cross-entropy pulling routing towards each sample's task expert (0 = off; needs a \"task\" naming an expert)" };
    private readonly Option<string?> _routing = new("--routing") { Description = "Stage 2 routing: soft or straight_through" };

    private RouterOptions()
    {
        _preset.AcceptOnlyFromAmong(RouterPreset.All.Select(p => p.Name).ToArray());
        _routing.AcceptOnlyFromAmong("soft", "straight_through");
        _granularity.AcceptOnlyFromAmong("token", "sequence");
    }

    /// <summary>New options (not yet added to a command).</summary>
    public static RouterOptions Create() => new();

    /// <summary>Adds every option to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(_preset);
        command.Options.Add(_input);
        command.Options.Add(_inputNorm);
        command.Options.Add(_granularity);
        command.Options.Add(_supervision);
        command.Options.Add(_routing);
    }

    /// <summary>True when <c>--routing-granularity</c> was given explicitly.</summary>
    public bool GranularityGiven(ParseResult result) => result.GetValue(_granularity) is not null;

    /// <summary>True when <c>--router-supervision</c> was given explicitly.</summary>
    public bool SupervisionGiven(ParseResult result) => result.GetValue(_supervision) is not null;

    /// <summary>The preset with every explicitly given flag applied.</summary>
    public RouterPreset Resolve(ParseResult result) =>
        RouterPreset.Parse(result.GetValue(_preset)!).Override(result.GetValue(_input), result.GetValue(_inputNorm), result.GetValue(_granularity),
            result.GetValue(_supervision), result.GetValue(_routing),
            ("--router-input", "--router-input-norm", "--routing-granularity", "--router-supervision", "--routing"));
}
