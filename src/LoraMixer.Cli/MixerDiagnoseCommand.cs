using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using LoraMixer.Data;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Reporting;
using LoraMixer.Tokenization;
using Spectre.Console;

namespace LoraMixer.Cli;

/// <summary>
/// <c>mixer diagnose DIR --data F.jsonl</c>: per router, task consistency of prompt and response tokens and
/// the linear-probe ceiling; exact match and loss with learned against forced routing. Table, and with
/// <c>--out</c> a JSON file plus a PNG beside it.
/// </summary>
internal static class MixerDiagnoseCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("mixer-dir") { Description = "LoRA-Mixer folder" };
        var model = new Option<string?>("--model", "-m") { Description = "Base model folder (default: the config's base_model)" };
        var data = new Option<string>("--data") { Description = "Labelled JSONL ({\"prompt\",\"response\",\"task\"} with tasks named like the experts)", Required = true };
        var output = new Option<string?>("--out", "-o") { Description = "JSON file to write (a PNG of the per-layer figures goes beside it)" };
        var limit = new Option<int>("--limit") { Description = "Most lines to use (0 = all)", DefaultValueFactory = _ => 400 };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per forward pass", DefaultValueFactory = _ => 16 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest sequence in tokens", DefaultValueFactory = _ => 512 };
        var device = CommonOptions.Device();
        var command = new Command("diagnose", "Does the mixer route each task to its expert? Consistency, linear-probe ceiling, learned vs forced routing")
        {
            dir, model, data, output, limit, batchSize, maxLength, device,
        };
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            string mixerDir = result.GetValue(dir)!;
            string? outPath = result.GetValue(output) is { } o ? Path.GetFullPath(o) : null;
            using var claim = outPath is null ? null : OutputFolder.ClaimFile(outPath, "--out");
            int n = result.GetValue(limit), batch = result.GetValue(batchSize), length = result.GetValue(maxLength);
            if (n < 0) throw new ArgumentException($"--limit must be 0 (all) or more, got {n}");
            if (batch < 1) throw new ArgumentException($"--batch-size must be at least 1, got {batch}");
            var config = MixerConfig.Load(mixerDir);
            string modelDir = result.GetValue(model) ?? MixerInspectCommand.DefaultBase(config, mixerDir);
            var records = JsonlDataset.Load(result.GetValue(data)!);
            // Every task equally represented within the limit: lines interleaved task by task.
            var chosen = records.GroupBy(r => r.Task ?? "").SelectMany(g => g.Select((r, i) => (r, i))).OrderBy(x => x.i)
                .Select(x => x.r).Take(n == 0 ? int.MaxValue : n).ToArray();
            var tokenizer = TokenizerLoader.Load(modelDir);
            using var lm = ModelLoader.LoadCausalLM(modelDir, CommonOptions.ResolveDevice(result, device));
            using var mixer = MixerCheckpoint.Load(lm, mixerDir);
            var diagnosis = RoutingDiagnosis.Run(mixer, tokenizer, chosen, batch, length,
                new Progress<string>(s => Console.Error.WriteLine($"» {s}")));
            Write(diagnosis);
            if (outPath is not null)
            {
                OutputFolder.WriteText(outPath, diagnosis.ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                string png = Path.ChangeExtension(outPath, ".png");
                var layers = diagnosis.Layers.Select((_, i) => $"layer {i}").ToArray();
                ReportPlots.GroupedBars(png, "Routing diagnosis per layer", layers, new (string, double[])[]
                {
                    ("prompt consistency", diagnosis.Layers.Select(l => 100 * l.PromptConsistency).ToArray()),
                    ("response consistency", diagnosis.Layers.Select(l => 100 * l.ResponseConsistency).ToArray()),
                    ("probe: last prompt token", diagnosis.Layers.Select(l => 100 * l.ProbeLastPrompt).ToArray()),
                    ("probe: response tokens", diagnosis.Layers.Select(l => 100 * l.ProbeResponse).ToArray()),
                }, "% (chance: 100 / tasks)");
                Console.WriteLine($"wrote {outPath} and {png}");
            }
            return 0;
        }));
        return command;
    }

    private static void Write(RoutingDiagnosisResult d)
    {
        static string Pct(double v) => double.IsFinite(v) ? (100 * v).ToString("F1", CultureInfo.InvariantCulture) : "-";
        var table = new Table().AddColumn("router")
            .AddColumn(new TableColumn("prompt → own expert %").RightAligned())
            .AddColumn(new TableColumn("response → own expert %").RightAligned())
            .AddColumn(new TableColumn("probe @ last prompt %").RightAligned())
            .AddColumn(new TableColumn("probe @ response %").RightAligned());
        foreach (var l in d.Layers)
            table.AddRow(Markup.Escape(l.Router), Pct(l.PromptConsistency), Pct(l.ResponseConsistency), Pct(l.ProbeLastPrompt), Pct(l.ProbeResponse));
        AnsiConsole.Write(table);
        var em = new Table().AddColumn("task").AddColumn(new TableColumn("exact match, learned routing %").RightAligned())
            .AddColumn(new TableColumn("exact match, forced to own expert %").RightAligned());
        foreach (var (task, (learned, forced)) in d.ExactMatchPerTask) em.AddRow(Markup.Escape(task), Pct(learned), Pct(forced));
        em.AddRow("[bold]all[/]", Pct(d.LearnedExactMatch), Pct(d.ForcedExactMatch));
        AnsiConsole.Write(em);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{d.Samples} samples, {d.Tasks.Count} tasks (chance {100.0 / Math.Max(1, d.Tasks.Count):F1}%); response loss {d.LearnedLoss:F4} learned vs {d.ForcedLoss:F4} forced"));
    }
}
