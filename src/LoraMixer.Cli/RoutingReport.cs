using System.Globalization;
using LoraMixer.Mixing;
using Spectre.Console;

namespace LoraMixer.Cli;

/// <summary>Prints <see cref="RoutingStatistics"/>: per router the expert load and mean entropy, and optionally the task × expert matrix.</summary>
internal static class RoutingReport
{
    public static void Write(RoutingStatistics stats, bool taskMatrix)
    {
        Console.WriteLine("expert load (share of top-1 choices) and mean routing entropy (nats) per router:");
        var load = new Table().AddColumn("router");
        foreach (string e in stats.ExpertNames) load.AddColumn(new TableColumn(Markup.Escape(e)).RightAligned());
        load.AddColumn(new TableColumn("entropy").RightAligned());
        for (int r = 0; r < stats.RouterNames.Count; r++)
        {
            var cells = new List<string> { Markup.Escape(ShortName(stats.RouterNames[r])) };
            cells.AddRange(stats.Load(r).Select(Share));
            cells.Add(Number(stats.MeanEntropy(r)));
            load.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(load);
        if (!taskMatrix) return;
        for (int r = 0; r < stats.RouterNames.Count; r++)
        {
            var matrix = stats.TaskExpert(r);
            Console.WriteLine($"{ShortName(stats.RouterNames[r])}: task × expert top-1 share");
            var table = new Table().AddColumn("task");
            foreach (string e in stats.ExpertNames) table.AddColumn(new TableColumn(Markup.Escape(e)).RightAligned());
            for (int t = 0; t < stats.TaskNames.Count; t++)
            {
                var cells = new List<string> { Markup.Escape(stats.TaskNames[t]) };
                for (int e = 0; e < stats.ExpertNames.Count; e++) cells.Add(Share(matrix[t, e]));
                table.AddRow(cells.ToArray());
            }
            AnsiConsole.Write(table);
        }
    }

    // "model.layers.3.router" → "layer 3"; projection routers keep their module path after the layer.
    private static string ShortName(string router)
    {
        const string prefix = "model.layers.";
        if (!router.StartsWith(prefix, StringComparison.Ordinal)) return router;
        string rest = router[prefix.Length..];
        int dot = rest.IndexOf('.');
        string layer = dot < 0 ? rest : rest[..dot];
        string tail = dot < 0 ? "" : rest[(dot + 1)..];
        if (tail.EndsWith(".router", StringComparison.Ordinal)) tail = tail[..^".router".Length];
        return tail is "" or "router" ? $"layer {layer}" : $"layer {layer} {tail}";
    }

    private static string Share(double v) => double.IsFinite(v) ? (v * 100).ToString("F1", CultureInfo.InvariantCulture) + "%" : "-";

    private static string Number(double v) => double.IsFinite(v) ? v.ToString("F3", CultureInfo.InvariantCulture) : "-";
}
