using System.Text;

namespace LoraMixer.Experiments;

/// <summary>The report as one static HTML page: inline CSS, relative image links, no scripts, every text escaped.</summary>
internal static class ExperimentReportHtml
{
    private const string Style =
        "body{font-family:system-ui,'DejaVu Sans',Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}" +
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em}" +
        "th{background:#f3f3f3}td{text-align:right}td:first-child,th:first-child{text-align:left}" +
        "caption{caption-side:top;text-align:left;color:#555;padding-bottom:.4em}" +
        "figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}figcaption{color:#555}code{background:#f3f3f3}";

    public static string Render(ReportContent content)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<title>").Append(E(content.Title)).Append("</title>\n<style>").Append(Style).Append("</style>\n</head>\n<body>\n")
            .Append("<h1>").Append(E(content.Title)).Append("</h1>\n<p>").Append(E(content.Summary)).Append("</p>\n");
        if (content.Setup.Count > 0)
        {
            html.Append("<h2>Setup</h2>\n<ul>\n");
            foreach (var (key, value) in content.Setup) html.Append("<li><b>").Append(E(key)).Append("</b>: <code>").Append(E(value)).Append("</code></li>\n");
            html.Append("</ul>\n");
        }
        html.Append("<h2>Results</h2>\n");
        Scores(html, content.Main, content.MainCaption);
        Simple(html, content.CostHeader, content.CostRows);
        if (content.IntervalRows.Count > 0)
        {
            html.Append("<h2>Statistics</h2>\n<p>").Append(E(ExperimentReport.IntervalCaption)).Append("</p>\n");
            Simple(html, content.StatsHeader, content.IntervalRows);
            if (content.PairedRows.Count > 0)
            {
                html.Append("<p>").Append(E(ExperimentReport.PairedCaption)).Append("</p>\n");
                Simple(html, content.StatsHeader, content.PairedRows);
            }
        }
        if (content.Ablation is not null)
        {
            html.Append("<h2>RSL ablation</h2>\n");
            Scores(html, content.Ablation, content.AblationCaption ?? "");
        }
        if (content.Figures.Count > 0)
        {
            html.Append("<h2>Figures</h2>\n");
            foreach (var (file, caption) in content.Figures)
                html.Append("<figure><img src=\"").Append(E(file)).Append("\" alt=\"").Append(E(caption)).Append("\"><figcaption>")
                    .Append(E(caption)).Append("</figcaption></figure>\n");
        }
        return html.Append("</body>\n</html>\n").ToString();
    }

    private static void Scores(StringBuilder html, ScoreTable table, string caption)
    {
        html.Append("<table>\n<caption>").Append(E(caption)).Append("</caption>\n<tr><th>Method</th>");
        foreach (var column in table.Columns) html.Append("<th>").Append(E(column)).Append("</th>");
        html.Append("</tr>\n");
        for (int r = 0; r < table.Rows.Count; r++)
        {
            html.Append("<tr><td>").Append(E(table.Rows[r])).Append("</td>");
            for (int c = 0; c < table.Columns.Count; c++)
            {
                string cell = E(table.Cell(r, c));
                html.Append("<td>").Append(table.IsBest(r, c) ? $"<b>{cell}</b>" : cell).Append("</td>");
            }
            html.Append("</tr>\n");
        }
        html.Append("</table>\n");
    }

    private static void Simple(StringBuilder html, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        html.Append("<table>\n<tr>").AppendJoin("", header.Select(h => $"<th>{E(h)}</th>")).Append("</tr>\n");
        foreach (var row in rows) html.Append("<tr>").AppendJoin("", row.Select(c => $"<td>{E(c)}</td>")).Append("</tr>\n");
        html.Append("</table>\n");
    }

    // The page is UTF-8, so only the characters HTML gives a meaning need escaping; ± and × stay readable.
    private static string E(string text) =>
        text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;").Replace("'", "&#39;");
}
