using System.CommandLine;
using LoraMixer.Experiments;
using Spectre.Console;

namespace LoraMixer.Cli;

/// <summary><c>experiment run</c>: every method of a recipe on every seed, cached and resumable, then the report.</summary>
internal static class ExperimentCommand
{
    public static Command Create()
    {
        var recipeArg = new Argument<string>("recipe") { Description = "Recipe JSON (see recipes/)" };
        var output = new Option<string?>("--out") { Description = "Run folder (default runs/<recipe name>); run again to resume" };
        var seeds = new Option<string?>("--seeds") { Description = "Comma-separated seeds, replacing the recipe's" };
        var methods = new Option<string?>("--methods") { Description = $"Comma-separated methods, replacing the recipe's: {string.Join(",", ExperimentMethods.All.Select(m => m.Id))}" };
        var dataDir = new Option<string?>("--data-dir") { Description = "Benchmark folder, replacing the recipe's data_dir (default $LORAMIXER_DATA)" };
        var noReport = new Option<bool>("--no-report") { Description = "Do not write the report at the end" };
        var device = CommonOptions.Device();
        var run = new Command("run", "Run (or resume) an experiment: train and evaluate every method of a recipe on every seed")
        {
            recipeArg, output, seeds, methods, dataDir, noReport, device,
        };
        run.SetAction(result => CommonOptions.Run(result, () =>
        {
            var recipe = ExperimentRecipe.Load(result.GetValue(recipeArg)!);
            if (result.GetValue(seeds) is string s)
                recipe = recipe with { Seeds = Split(s, "--seeds").Select(x => int.TryParse(x, out int v) ? v : throw new ArgumentException($"--seeds: '{x}' is not an integer")).ToArray() };
            if (result.GetValue(methods) is string m) recipe = recipe with { Methods = Split(m, "--methods") };
            if (result.GetValue(dataDir) is string d) recipe = recipe with { DataDir = d };
            recipe.Validate();
            string runDir = result.GetValue(output) ?? Path.Combine("runs", recipe.Name);
            using var claim = OutputFolder.ClaimFolder(runDir, "--out");
            try
            {
                ExperimentRunner.Run(recipe, runDir, (title, work) => TrainingDisplay.Run(title, work),
                    line => AnsiConsole.MarkupLine($"[grey]»[/] {Markup.Escape(line)}"), CommonOptions.ResolveDevice(result, device));
            }
            catch (OperationCanceledException e)
            {
                Console.Error.WriteLine($"stopped: {e.Message} (finished steps are kept in {runDir})");
                return 130;
            }
            AnsiConsole.MarkupLine($"run finished: {Markup.Escape(Path.GetFullPath(runDir))}");
            if (!result.GetValue(noReport))
            {
                string reportDir = Path.Combine(runDir, "report");
                ExperimentReport.Write(runDir, reportDir);
                AnsiConsole.MarkupLine($"report: {Markup.Escape(Path.Combine(reportDir, "README.md"))} and index.html");
            }
            return 0;
        }));
        return new Command("experiment", "Run comparisons of LoRA-Mixer against the baselines") { run };
    }

    private static string[] Split(string value, string option)
    {
        var parts = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return parts.Length > 0 ? parts : throw new ArgumentException($"{option}: name at least one");
    }
}
