using System.CommandLine;
using System.Globalization;
using LoraMixer.Experiments;
using Spectre.Console;

namespace LoraMixer.Cli;

/// <summary><c>demo</c>: the main job — experts, routers and the comparison table on the built-in suite.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Report folder", DefaultValueFactory = _ => "demo-report" };
        var baseModel = new Option<string?>("--base-model") { Description = "Base model folder (default: the embedded default model, pretrained and cached on first run)" };
        var seed = new Option<int>("--seed") { Description = "Seed of data, initialisation and order", DefaultValueFactory = _ => 0 };
        var quick = new Option<bool>("--quick") { Description = "Tiny sizes: checks the pipeline in seconds; the numbers mean nothing" };
        var trainPerTask = new Option<int?>("--train-per-task") { Description = "Training items per task" };
        var stage1Steps = new Option<int?>("--stage1-steps") { Description = "Optimizer steps of stage 1 and of the multi-task LoRA" };
        var stage2Steps = new Option<int?>("--stage2-steps") { Description = "Optimizer steps of each stage-2 (router) run" };
        var lr = new Option<double?>("--lr") { Description = "LoRA learning rate" };
        var routerLr = new Option<double?>("--router-lr") { Description = "Router learning rate" };
        var rank = new Option<int?>("--rank") { Description = "Rank of each expert" };
        var router = RouterOptions.Create();
        var pretrainSteps = new Option<int?>("--pretrain-steps") { Description = "Pretraining steps of the default model (a cached one pretrained with other settings is pretrained again)" };
        var arch = new Option<string>("--arch") { Description = "Default base model architecture: llama or mamba", DefaultValueFactory = _ => "llama" };
        arch.AcceptOnlyFromAmong("llama", "mamba");
        var device = CommonOptions.Device();
        var command = new Command("demo", "Train one LoRA expert per task, mix them with LoRA-Mixer and compare every method on the built-in suite")
        {
            output, baseModel, seed, quick, trainPerTask, stage1Steps, stage2Steps, lr, routerLr, rank, pretrainSteps, arch, device,
        };
        router.AddTo(command);
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            string outDir = result.GetValue(output)!;
            using var claim = OutputFolder.ClaimFolder(outDir, "--out");
            string? baseDir = result.GetValue(baseModel);
            var options = result.GetValue(quick)
                ? DemoOptions.Quick(outDir, baseDir ?? Path.Combine(outDir, "quick-base-model"))
                : new DemoOptions { OutputDir = outDir, Recipe = DemoRunner.DefaultRecipe with { BaseModel = baseDir is null ? "default" : Path.GetFullPath(baseDir) } };
            if (result.GetValue(arch) == "mamba")
                options = result.GetValue(quick) ? options with { Recipe = options.Recipe with { Arch = "mamba" } }
                    : DemoOptions.MambaDefaults(options); // Mamba trains ~4x slower on CPU: fewer steps by default
            var preset = router.Resolve(result);
            var recipe = options.Recipe.WithPreset(preset);
            options = options with
            {
                Device = CommonOptions.ResolveDevice(result, device),
                Recipe = recipe with
                {
                    Seeds = [result.GetValue(seed)],
                    Stage1Samples = result.GetValue(trainPerTask) ?? recipe.Stage1Samples,
                    Stage1Steps = result.GetValue(stage1Steps) ?? recipe.Stage1Steps,
                    Stage2Steps = result.GetValue(stage2Steps) ?? recipe.Stage2Steps,
                    Lr = result.GetValue(lr) ?? recipe.Lr,
                    RouterLr = result.GetValue(routerLr) ?? preset.Stage2LearningRate,
                    Rank = result.GetValue(rank) ?? recipe.Rank,
                },
                Pretrain = options.Pretrain with { Steps = result.GetValue(pretrainSteps) ?? options.Pretrain.Steps },
            };
            var demo = DemoRunner.Run(options, (title, work) => TrainingDisplay.Run(title, work), line => AnsiConsole.MarkupLine($"[grey]»[/] {Markup.Escape(line)}"));
            Print(demo);
            return 0;
        }));
        return command;
    }

    private static void Print(DemoResult demo)
    {
        var table = new Table().Title("held-out accuracy (%)").AddColumn("method");
        foreach (var task in demo.Tasks) table.AddColumn(new TableColumn(task).RightAligned());
        table.AddColumn(new TableColumn("average").RightAligned());
        foreach (var m in demo.Methods)
        {
            var cells = new List<string> { Markup.Escape(m.Method) };
            foreach (var task in demo.Tasks) cells.Add(Best(demo, task, m.Accuracy[task]));
            cells.Add(Best(demo, null, m.Average));
            table.AddRow(cells.ToArray());
        }
        table.Caption($"base: {demo.Architecture}");
        AnsiConsole.Write(table);
        foreach (var (method, stats) in demo.Routing)
            AnsiConsole.MarkupLine($"{Markup.Escape(method)}: {100 * stats.TaskAlignment():F1}% of tokens routed to their task's expert (chance {100.0 / stats.ExpertNames.Count:F0}%)");
        AnsiConsole.MarkupLine($"report: {Markup.Escape(Path.Combine(demo.OutputDir, "README.md"))} ({demo.Elapsed.TotalSeconds:F0} s)");
    }

    private static string Best(DemoResult demo, string? task, double value)
    {
        double best = demo.Methods.Max(m => task is null ? m.Average : m.Accuracy[task]);
        string text = value.ToString("F1", CultureInfo.InvariantCulture);
        return Math.Abs(value - best) < 1e-9 ? $"[bold]{text}[/]" : text;
    }
}
