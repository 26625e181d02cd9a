using System.Globalization;
using System.Text;

namespace LoraMixer.Reporting;

/// <summary>
/// GitHub-flavoured Markdown tables for reports: a method × task comparison with the best value of each
/// column in bold, and a plain table of strings. Numbers use the invariant culture.
/// </summary>
public static class MarkdownTable
{
    /// <summary>What a cell without a value shows.</summary>
    public const string Missing = "–";

    /// <summary>
    /// A comparison table: one row per method, one column per task, each cell <c>mean</c> or
    /// <c>mean ± sd</c>. In each column the best mean (the largest, or the smallest when
    /// <paramref name="higherIsBetter"/> is false) is bold, and so is every mean that ties with it once
    /// rounded to <paramref name="decimals"/>, since that is what a reader can compare. Null or NaN means
    /// show <see cref="Missing"/>; a null or NaN sd shows the mean alone.
    /// </summary>
    /// <param name="rowLabels">One label per row (methods).</param>
    /// <param name="columnLabels">One label per column (tasks).</param>
    /// <param name="means">Rows × columns means.</param>
    /// <param name="sds">Null, or rows × columns standard deviations.</param>
    /// <param name="higherIsBetter">True when the largest mean is best (accuracy), false for the smallest (loss).</param>
    /// <param name="decimals">Digits after the decimal point, 0 to 15.</param>
    /// <param name="caption">A line printed above the table, or null.</param>
    /// <param name="rowHeader">The header of the label column.</param>
    /// <returns>The table, lines ending in '\n'.</returns>
    /// <exception cref="ArgumentException">The labels or sds do not match the shape of the means.</exception>
    public static string Comparison(
        IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels,
        double?[,] means, double?[,]? sds, bool higherIsBetter = true, int decimals = 1,
        string? caption = null, string rowHeader = "Method")
    {
        ArgumentNullException.ThrowIfNull(rowLabels);
        ArgumentNullException.ThrowIfNull(columnLabels);
        ArgumentNullException.ThrowIfNull(means);
        int rows = means.GetLength(0), columns = means.GetLength(1);
        if (rowLabels.Count != rows)
            throw new ArgumentException($"the means have {rows} rows but there are {rowLabels.Count} row labels", nameof(rowLabels));
        if (columnLabels.Count != columns)
            throw new ArgumentException($"the means have {columns} columns but there are {columnLabels.Count} column labels", nameof(columnLabels));
        if (sds is not null && (sds.GetLength(0) != rows || sds.GetLength(1) != columns))
            throw new ArgumentException($"the sds are {sds.GetLength(0)}×{sds.GetLength(1)} but the means are {rows}×{columns}", nameof(sds));
        ArgumentOutOfRangeException.ThrowIfNegative(decimals);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(decimals, 15);

        var cells = new string[rows][];
        for (int r = 0; r < rows; r++) cells[r] = new string[columns + 1];
        for (int c = 0; c < columns; c++)
        {
            double? best = null;
            for (int r = 0; r < rows; r++)
            {
                if (Value(means[r, c]) is not { } m) continue;
                double rounded = Shown(m, decimals);
                if (best is null || (higherIsBetter ? rounded > best : rounded < best)) best = rounded;
            }
            for (int r = 0; r < rows; r++)
            {
                if (Value(means[r, c]) is not { } m)
                {
                    cells[r][c + 1] = Missing;
                    continue;
                }
                string text = Format(m, decimals);
                if (sds is not null && Value(sds[r, c]) is { } sd) text += " ± " + Format(sd, decimals);
                cells[r][c + 1] = Shown(m, decimals) == best ? $"**{text}**" : text;
            }
        }
        for (int r = 0; r < rows; r++) cells[r][0] = Escape(rowLabels[r]);

        var header = new List<string>(columns + 1) { Escape(rowHeader) };
        header.AddRange(columnLabels.Select(Escape));
        var alignments = Enumerable.Repeat("---:", columns).Prepend(":---");

        var table = new StringBuilder();
        if (caption is not null) table.Append(Escape(caption)).Append("\n\n");
        AppendRow(table, header);
        AppendRow(table, alignments);
        foreach (var row in cells) AppendRow(table, row);
        return table.ToString();
    }

    /// <summary>
    /// A plain table of strings, each cell escaped (pipes, line breaks). Rows shorter than the header are
    /// padded with empty cells.
    /// </summary>
    /// <param name="header">The column headers; at least one.</param>
    /// <param name="rows">The rows, each with at most as many cells as the header.</param>
    /// <returns>The table, lines ending in '\n'.</returns>
    /// <exception cref="ArgumentException">The header is empty or a row is longer than it.</exception>
    public static string Simple(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(rows);
        if (header.Count == 0) throw new ArgumentException("a table needs at least one column", nameof(header));

        var text = new StringBuilder();
        AppendRow(text, header.Select(Escape));
        AppendRow(text, Enumerable.Repeat("---", header.Count));
        int index = 0;
        foreach (var row in rows)
        {
            if (row.Count > header.Count)
                throw new ArgumentException($"row {index} has {row.Count} cells but the header has {header.Count}", nameof(rows));
            AppendRow(text, row.Select(Escape).Concat(Enumerable.Repeat("", header.Count - row.Count)));
            index++;
        }
        return text.ToString();
    }

    // The value as printed, so that ties are judged on what the reader sees.
    private static double Shown(double value, int decimals) => double.Parse(Format(value, decimals), CultureInfo.InvariantCulture);

    private static double? Value(double? x) => x is { } v && !double.IsNaN(v) ? v : null;

    private static string Format(double value, int decimals)
    {
        string text = value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        // -0.04 rounds to "-0.0"; a minus sign on zero only confuses a reader.
        return text.StartsWith('-') && text.AsSpan(1).IndexOfAnyExcept("0.") < 0 ? text[1..] : text;
    }

    // A pipe would end the cell and a line break the row; a backslash before a pipe is what GFM expects.
    private static string Escape(string text) =>
        text.Replace("|", "\\|").Replace("\r\n", " ").Replace('\n', ' ').Replace('\r', ' ');

    private static void AppendRow(StringBuilder text, IEnumerable<string> cells) =>
        text.Append("| ").AppendJoin(" | ", cells).Append(" |\n");
}
