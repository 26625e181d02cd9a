using System.Globalization;
using LoraMixer.IO;
using ScottPlot;
using ScottPlot.Plottables;

namespace LoraMixer.Reporting;

/// <summary>
/// The figures of a LoRA-Mixer report as PNG files: routing heatmaps, grouped bars (expert load, accuracy
/// per task and method) and line plots (loss curves). Plain arrays in, one file out, written atomically.
/// NaN values are skipped; empty input gives a figure that says "No data" rather than an exception.
/// </summary>
public static class ReportPlots
{
    /// <summary>Default width of a figure in pixels.</summary>
    public const int DefaultWidth = 800;

    /// <summary>Default height of a figure in pixels.</summary>
    public const int DefaultHeight = 500;

    private const float TitleFontSize = 20;
    private const float AxisLabelFontSize = 16;
    private const float TickFontSize = 14;
    private const float CellFontSize = 14;

    /// <summary>
    /// Writes a heatmap of <paramref name="values"/> (rows × columns, e.g. task × expert routing weights)
    /// with each cell's value printed in it to 2 decimals and a colour bar. The image is at least
    /// 800×500 and grows with the number and length of the labels; NaN cells are left blank.
    /// </summary>
    /// <param name="path">The PNG file to create or replace.</param>
    /// <param name="title">The figure title.</param>
    /// <param name="values">The matrix; row 0 is drawn at the top.</param>
    /// <param name="rowLabels">One label per row, shown on the left.</param>
    /// <param name="columnLabels">One label per column, shown below.</param>
    /// <param name="colorbarLabel">The colour bar's label, or null for none.</param>
    /// <returns>The size of the written image.</returns>
    /// <exception cref="ArgumentException">The label counts do not match the matrix.</exception>
    public static FigureSize Heatmap(
        string path, string title, double[,] values,
        IReadOnlyList<string> rowLabels, IReadOnlyList<string> columnLabels, string? colorbarLabel)
    {
        ArgumentNullException.ThrowIfNull(values);
        ArgumentNullException.ThrowIfNull(rowLabels);
        ArgumentNullException.ThrowIfNull(columnLabels);
        int rows = values.GetLength(0), columns = values.GetLength(1);
        if (rowLabels.Count != rows)
            throw new ArgumentException($"the heatmap has {rows} rows but {rowLabels.Count} row labels", nameof(rowLabels));
        if (columnLabels.Count != columns)
            throw new ArgumentException($"the heatmap has {columns} columns but {columnLabels.Count} column labels", nameof(columnLabels));

        var (min, max) = FiniteRange(values);
        if (rows == 0 || columns == 0 || double.IsNaN(min))
            return SaveNoData(path, title, DefaultWidth, DefaultHeight);

        // Room for the longest labels plus at least 70×40 pixels a cell, so the printed values fit.
        int longestRow = rowLabels.Max(l => l.Length), longestColumn = columnLabels.Max(l => l.Length);
        bool rotate = longestColumn * 8 > 66;
        int width = Math.Max(DefaultWidth, 120 + 9 * longestRow + 70 * columns + 160);
        int height = Math.Max(DefaultHeight, 120 + (rotate ? (int)(6.5 * longestColumn) : 30) + 40 * rows);

        var plot = NewPlot(title);
        // The heatmap draws its first row at the top with cells centred on integers: row r at y = rows - 1 - r.
        var heatmap = plot.Add.Heatmap(values);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.NaNCellColor = Colors.Transparent;
        // A constant matrix still gets a colour range.
        heatmap.ManualRange = min == max ? new ScottPlot.Range(min - 0.5, max + 0.5) : new ScottPlot.Range(min, max);
        var range = heatmap.ManualRange.Value;

        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                double v = values[r, c];
                if (!double.IsFinite(v)) continue;
                var text = plot.Add.Text(v.ToString("F2", CultureInfo.InvariantCulture), c, rows - 1 - r);
                text.LabelFontSize = CellFontSize;
                text.LabelAlignment = Alignment.MiddleCenter;
                Color cell = heatmap.Colormap.GetColor(v, range);
                text.LabelFontColor = Luminance(cell) > 0.5 ? Colors.Black : Colors.White;
            }
        }

        plot.Axes.Bottom.SetTicks(
            Enumerable.Range(0, columns).Select(c => (double)c).ToArray(), columnLabels.ToArray());
        plot.Axes.Left.SetTicks(
            Enumerable.Range(0, rows).Select(r => (double)(rows - 1 - r)).ToArray(), rowLabels.ToArray());
        if (rotate) RotateBottomLabels(plot, 45, longestColumn);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Left.MajorTickStyle.Length = 0;
        plot.Axes.Bottom.MinorTickStyle.Length = 0;
        plot.Axes.Left.MinorTickStyle.Length = 0;
        plot.Grid.IsVisible = false;
        plot.Axes.SetLimits(-0.5, columns - 0.5, -0.5, rows - 0.5);

        var colorBar = plot.Add.ColorBar(heatmap);
        if (colorbarLabel is not null)
        {
            colorBar.Label = colorbarLabel;
            colorBar.LabelStyle.FontSize = AxisLabelFontSize;
        }
        return Save(plot, path, width, height);
    }

    /// <summary>
    /// Writes a bar chart with one cluster per group and one coloured bar per series in each cluster
    /// (e.g. accuracy per task for each method), with a legend and optional ± error bars.
    /// NaN values draw no bar; NaN errors draw no error bar.
    /// </summary>
    /// <param name="path">The PNG file to create or replace.</param>
    /// <param name="title">The figure title.</param>
    /// <param name="groups">The cluster labels along the x axis.</param>
    /// <param name="series">Each series' name and one value per group.</param>
    /// <param name="yLabel">The y-axis label.</param>
    /// <param name="errors">Null, or one entry per series: null for no error bars, else one half-width per group.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="height">Image height in pixels.</param>
    /// <returns>The size of the written image.</returns>
    /// <exception cref="ArgumentException">A series or error array does not have one value per group.</exception>
    public static FigureSize GroupedBars(
        string path, string title, IReadOnlyList<string> groups,
        IReadOnlyList<(string Series, double[] Values)> series, string yLabel,
        IReadOnlyList<double[]?>? errors = null, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(series);
        CheckSize(width, height);
        if (errors is not null && errors.Count != series.Count)
            throw new ArgumentException($"{errors.Count} error arrays for {series.Count} series", nameof(errors));
        for (int s = 0; s < series.Count; s++)
        {
            if (series[s].Values.Length != groups.Count)
                throw new ArgumentException(
                    $"series '{series[s].Series}' has {series[s].Values.Length} values for {groups.Count} groups", nameof(series));
            if (errors?[s] is { } e && e.Length != groups.Count)
                throw new ArgumentException(
                    $"series '{series[s].Series}' has {e.Length} errors for {groups.Count} groups", nameof(errors));
        }
        if (groups.Count == 0 || !series.Any(s => s.Values.Any(double.IsFinite)))
            return SaveNoData(path, title, width, height, yLabel: yLabel);

        var plot = NewPlot(title);
        // Clusters sit at x = 0, 1, 2, ...; the bars of one cluster share 80% of the unit gap.
        double barWidth = 0.8 / series.Count;
        for (int s = 0; s < series.Count; s++)
        {
            Color color = plot.Add.Palette.GetColor(s);
            var bars = new List<Bar>();
            for (int g = 0; g < groups.Count; g++)
            {
                double v = series[s].Values[g];
                if (!double.IsFinite(v)) continue;
                double error = errors?[s]?[g] ?? 0;
                bars.Add(new Bar
                {
                    Position = g - 0.4 + barWidth * (s + 0.5),
                    Value = v,
                    Error = double.IsFinite(error) ? Math.Abs(error) : 0,
                    Size = barWidth * 0.9,
                    FillColor = color,
                    ErrorSize = barWidth * 0.4,
                    LineWidth = 1.5f, // also the width of the error bar, which ScottPlot draws in the border colour
                });
            }
            var barPlot = plot.Add.Bars(bars);
            barPlot.LegendText = series[s].Series;
        }

        plot.Axes.Bottom.SetTicks(
            Enumerable.Range(0, groups.Count).Select(g => (double)g).ToArray(), groups.ToArray());
        int longestGroup = groups.Max(g => g.Length);
        if (longestGroup * 8 * groups.Count > width - 250) RotateBottomLabels(plot, 30, longestGroup);
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Bottom.MinorTickStyle.Length = 0;
        plot.Axes.Margins(bottom: 0);
        plot.YLabel(yLabel);
        ShowLegend(plot);
        return Save(plot, path, width, height);
    }

    /// <summary>
    /// Writes a line plot with one line per series (e.g. training and validation loss against step) and
    /// a legend. Points where X or Y is NaN or infinite are skipped; a series with none left is omitted.
    /// </summary>
    /// <param name="path">The PNG file to create or replace.</param>
    /// <param name="title">The figure title.</param>
    /// <param name="series">Each series' name with its X and Y values, of equal length.</param>
    /// <param name="xLabel">The x-axis label.</param>
    /// <param name="yLabel">The y-axis label.</param>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="height">Image height in pixels.</param>
    /// <returns>The size of the written image.</returns>
    /// <exception cref="ArgumentException">A series has X and Y of different lengths.</exception>
    public static FigureSize Lines(
        string path, string title, IReadOnlyList<(string Series, double[] X, double[] Y)> series,
        string xLabel, string yLabel, int width = DefaultWidth, int height = DefaultHeight)
    {
        ArgumentNullException.ThrowIfNull(series);
        CheckSize(width, height);
        foreach (var (name, x, y) in series)
        {
            if (x.Length != y.Length)
                throw new ArgumentException($"series '{name}' has {x.Length} X values and {y.Length} Y values", nameof(series));
        }

        var plot = NewPlot(title);
        int drawn = 0;
        for (int s = 0; s < series.Count; s++)
        {
            var (name, x, y) = series[s];
            var keep = Enumerable.Range(0, x.Length).Where(i => double.IsFinite(x[i]) && double.IsFinite(y[i])).ToArray();
            if (keep.Length == 0) continue;
            var line = plot.Add.Scatter(keep.Select(i => x[i]).ToArray(), keep.Select(i => y[i]).ToArray(), plot.Add.Palette.GetColor(s));
            line.LegendText = name;
            line.LineWidth = 2;
            // Markers only where there are few points; on a long curve they hide the line.
            line.MarkerSize = keep.Length <= 30 ? 5 : 0;
            drawn++;
        }
        if (drawn == 0)
            return SaveNoData(path, title, width, height, xLabel, yLabel);

        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        ShowLegend(plot);
        return Save(plot, path, width, height);
    }

    // ScottPlot's own choice falls back to the first installed family, which on Debian is DejaVu Serif;
    // a sans font reads better at small sizes. Null leaves ScottPlot's choice.
    private static readonly Lazy<string?> SansFont = new(() =>
    {
        string[] installed = SkiaSharp.SKFontManager.Default.FontFamilies.ToArray();
        string[] preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica"];
        return preferred.FirstOrDefault(installed.Contains)
            ?? installed.FirstOrDefault(f => f.Contains("Sans", StringComparison.OrdinalIgnoreCase)
                                             && !f.Contains("Mono", StringComparison.OrdinalIgnoreCase));
    });

    private static Plot NewPlot(string title)
    {
        var plot = new Plot();
        if (SansFont.Value is { } font) plot.Font.Set(font);
        plot.Title(title, TitleFontSize);
        plot.Axes.Bottom.Label.FontSize = AxisLabelFontSize;
        plot.Axes.Left.Label.FontSize = AxisLabelFontSize;
        plot.Axes.Bottom.TickLabelStyle.FontSize = TickFontSize;
        plot.Axes.Left.TickLabelStyle.FontSize = TickFontSize;
        return plot;
    }

    private static void RotateBottomLabels(Plot plot, float degrees, int longestLabel)
    {
        plot.Axes.Bottom.TickLabelStyle.Rotation = degrees;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        // ScottPlot sizes the axis for upright labels; a rotated one reaches down by sin(angle) of its length
        // (about 8.5 pixels a character at the tick font size).
        plot.Axes.Bottom.MinimumSize = 25 + (float)Math.Sin(degrees * Math.PI / 180) * 8.5f * longestLabel;
    }

    // Outside the data area, so it never hides a bar or a curve.
    private static void ShowLegend(Plot plot)
    {
        plot.Legend.FontSize = TickFontSize;
        plot.ShowLegend(Edge.Right);
    }

    private static FigureSize SaveNoData(
        string path, string title, int width, int height, string? xLabel = null, string? yLabel = null)
    {
        var plot = NewPlot(title);
        if (xLabel is not null) plot.XLabel(xLabel);
        if (yLabel is not null) plot.YLabel(yLabel);
        var note = plot.Add.Text("No data", 0, 0);
        note.LabelFontSize = 24;
        note.LabelAlignment = Alignment.MiddleCenter;
        note.LabelFontColor = Colors.Gray;
        plot.Axes.SetLimits(-1, 1, -1, 1);
        // Ticks on an empty plot would suggest a scale that does not exist.
        plot.Axes.Bottom.SetTicks([], []);
        plot.Axes.Left.SetTicks([], []);
        plot.Grid.IsVisible = false;
        return Save(plot, path, width, height);
    }

    private static FigureSize Save(Plot plot, string path, int width, int height)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] png = plot.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.Write(path, stream => stream.Write(png));
        return new FigureSize(width, height);
    }

    private static void CheckSize(int width, int height)
    {
        if (width < 100 || height < 100)
            throw new ArgumentException($"a figure must be at least 100×100 pixels, not {width}×{height}");
    }

    private static (double Min, double Max) FiniteRange(double[,] values)
    {
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        foreach (double v in values)
        {
            if (!double.IsFinite(v)) continue;
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        return double.IsFinite(min) ? (min, max) : (double.NaN, double.NaN);
    }

    // Relative luminance (Rec. 709 weights), to pick black or white text that reads on a cell.
    private static double Luminance(Color c) => (0.2126 * c.R + 0.7152 * c.G + 0.0722 * c.B) / 255.0;
}
