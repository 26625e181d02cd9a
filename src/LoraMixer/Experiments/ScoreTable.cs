using System.Globalization;
using LoraMixer.Reporting;

namespace LoraMixer.Experiments;

/// <summary>
/// A method × (accuracy tasks, Avg, MCC tasks) table of <c>mean ± sd</c> over seeds, with the best mean of each
/// column marked by the rule of <see cref="MarkdownTable.Comparison"/> (largest, ties judged on the rounded value).
/// The Avg is over the accuracy tasks only; tasks scored by Matthews correlation come after it, labelled
/// "task (MCC)".
/// </summary>
public sealed class ScoreTable
{
    /// <summary>The label of the column of per-seed averages over the accuracy tasks.</summary>
    public const string AverageColumn = "Avg";

    /// <summary>The label of an MCC task's column.</summary>
    public static string MccColumn(string task) => $"{task} (MCC)";

    private ScoreTable(IReadOnlyList<string> rows, IReadOnlyList<string> columns, double?[,] means, double?[,] sds, int decimals)
    {
        (Rows, Columns, Means, Sds, Decimals) = (rows, columns, means, sds, decimals);
    }

    /// <summary>Row labels (method display names).</summary>
    public IReadOnlyList<string> Rows { get; }

    /// <summary>Column labels: the accuracy tasks, <see cref="AverageColumn"/>, then the MCC tasks (<see cref="MccColumn"/>).</summary>
    public IReadOnlyList<string> Columns { get; }

    /// <summary>Rows × columns means; null where missing.</summary>
    public double?[,] Means { get; }

    /// <summary>Rows × columns sample standard deviations; null for one seed or missing.</summary>
    public double?[,] Sds { get; }

    /// <summary>Digits shown after the decimal point.</summary>
    public int Decimals { get; }

    /// <summary>The table of <paramref name="methods"/> over the run's tasks and their average.</summary>
    public static ScoreTable Of(ExperimentResults results, IReadOnlyList<MethodSummary> methods, int decimals = 1)
    {
        // Keys: a task, or null for the Avg.
        var keys = results.Tasks.Where(t => !results.IsMcc(t)).Append(null).Concat(results.Tasks.Where(results.IsMcc)).ToArray();
        var columns = keys.Select(k => k is null ? AverageColumn : results.IsMcc(k) ? MccColumn(k) : k).ToArray();
        var means = new double?[methods.Count, columns.Length];
        var sds = new double?[methods.Count, columns.Length];
        for (int r = 0; r < methods.Count; r++)
        {
            for (int c = 0; c < columns.Length; c++)
            {
                var score = keys[c] is { } task ? methods[r].Scores.GetValueOrDefault(task) : methods[r].Average;
                (means[r, c], sds[r, c]) = (score?.Mean, score?.Sd);
            }
        }
        return new ScoreTable(methods.Select(m => m.Label).ToArray(), columns, means, sds, decimals);
    }

    /// <summary>The cell's text: <c>mean ± sd</c>, <c>mean</c> for one seed, or <see cref="MarkdownTable.Missing"/>.</summary>
    public string Cell(int row, int column) => Means[row, column] is not { } mean ? MarkdownTable.Missing
        : Sds[row, column] is { } sd ? $"{Format(mean)} ± {Format(sd)}" : Format(mean);

    /// <summary>Whether the cell's mean is the best of its column once rounded.</summary>
    public bool IsBest(int row, int column)
    {
        if (Means[row, column] is not { } mean) return false;
        double best = Enumerable.Range(0, Rows.Count).Select(r => Means[r, column]).OfType<double>().Max(Shown);
        return Shown(mean) == best;
    }

    /// <summary>The table in Markdown, best per column in bold.</summary>
    public string ToMarkdown(string? caption = null) =>
        MarkdownTable.Comparison(Rows, Columns, Means, Sds, decimals: Decimals, caption: caption);

    // As MarkdownTable prints it: invariant culture, no minus sign on a rounded zero.
    private string Format(double value)
    {
        string text = value.ToString("F" + Decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        return text.StartsWith('-') && text.AsSpan(1).IndexOfAnyExcept("0.") < 0 ? text[1..] : text;
    }

    private double Shown(double value) => double.Parse(Format(value), CultureInfo.InvariantCulture);
}
