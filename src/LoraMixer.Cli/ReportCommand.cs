using System.CommandLine;
using LoraMixer.Experiments;
using Spectre.Console;

namespace LoraMixer.Cli;

/// <summary><c>report</c>: an experiment run folder's report (Markdown, a static HTML page, PNG plots).</summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var runDir = new Argument<string>("RUN_DIR") { Description = $"Experiment run folder (recipe.json, manifest.json, {ExperimentResults.ExpectedLayout})" };
        var output = new Option<string?>("--out") { Description = "Report folder (default RUN_DIR/report)" };
        var command = new Command("report", "Write an experiment's report: README.md, index.html and PNG plots") { runDir, output };
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            string dir = result.GetValue(runDir)!;
            string outDir = result.GetValue(output) ?? Path.Combine(dir, "report");
            var results = ExperimentResults.Load(dir);
            using var claim = OutputFolder.ClaimFolder(outDir, "--out");
            var written = ExperimentReport.Write(results, outDir);
            Print(ScoreTable.Of(results, ExperimentReport.MainMethods(results)), results);
            foreach (string path in written) Console.WriteLine($"wrote {path}");
            return 0;
        }));
        return command;
    }

    private static void Print(ScoreTable scores, ExperimentResults results)
    {
        var table = new Table().Title(Markup.Escape($"{results.Name}: mean ± sd over seeds {string.Join(", ", results.Seeds)}")).AddColumn("method");
        foreach (string column in scores.Columns) table.AddColumn(new TableColumn(Markup.Escape(column)).RightAligned());
        for (int r = 0; r < scores.Rows.Count; r++)
        {
            var cells = new List<string> { Markup.Escape(scores.Rows[r]) };
            for (int c = 0; c < scores.Columns.Count; c++)
                cells.Add(scores.IsBest(r, c) ? $"[bold]{Markup.Escape(scores.Cell(r, c))}[/]" : Markup.Escape(scores.Cell(r, c)));
            table.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(table);
    }
}
