using System.Buffers.Binary;
using System.Security.Cryptography;
using LoraMixer.Reporting;
using SkiaSharp;

namespace LoraMixer.Tests.Reporting;

public sealed class ReportPlotsTests
{
    private static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    private static readonly string[] Tasks = ["arc", "gsm8k", "hellaswag"];
    private static readonly string[] Experts = ["e0", "e1", "e2", "e3"];

    [Fact]
    public void Heatmap_is_a_png_of_at_least_the_default_size_with_the_returned_dimensions()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "routing.png");
        var size = ReportPlots.Heatmap(path, "Routing", Matrix(seed: 1), Tasks, Experts, "mean weight");

        Assert.True(size.Width >= ReportPlots.DefaultWidth && size.Height >= ReportPlots.DefaultHeight);
        Assert.Equal(size, ReadPngSize(path));
    }

    [Fact]
    public void Heatmap_grows_with_many_long_labels()
    {
        string[] rows = Enumerable.Range(0, 14).Select(i => $"a rather long task name {i}").ToArray();
        string[] columns = Enumerable.Range(0, 12).Select(i => $"expert number {i}").ToArray();
        var values = new double[rows.Length, columns.Length];
        string path = Path.Combine(TestPaths.NewTempDir(), "big.png");

        var size = ReportPlots.Heatmap(path, "Routing", values, rows, columns, null);

        Assert.True(size.Width > ReportPlots.DefaultWidth && size.Height > ReportPlots.DefaultHeight, size.ToString());
        Assert.Equal(size, ReadPngSize(path));
    }

    [Fact]
    public void Heatmap_images_differ_when_the_values_differ_and_agree_when_they_do_not()
    {
        string dir = TestPaths.NewTempDir();
        ReportPlots.Heatmap(Path.Combine(dir, "a.png"), "Routing", Matrix(seed: 1), Tasks, Experts, "weight");
        ReportPlots.Heatmap(Path.Combine(dir, "a2.png"), "Routing", Matrix(seed: 1), Tasks, Experts, "weight");
        ReportPlots.Heatmap(Path.Combine(dir, "b.png"), "Routing", Matrix(seed: 2), Tasks, Experts, "weight");

        Assert.Equal(PixelHash(Path.Combine(dir, "a.png")), PixelHash(Path.Combine(dir, "a2.png")));
        Assert.NotEqual(PixelHash(Path.Combine(dir, "a.png")), PixelHash(Path.Combine(dir, "b.png")));
    }

    [Fact]
    public void Heatmap_draws_row_zero_at_the_top_with_the_colormap_s_ends_at_the_extremes()
    {
        // One hot cell at row 0, column 0 and one cold cell at the last row and column, the rest mid-range:
        // the top-left cell must be the brightest (viridis yellow) and the bottom-right the darkest.
        var values = new double[3, 4];
        for (int r = 0; r < 3; r++) for (int c = 0; c < 4; c++) values[r, c] = 0.5;
        values[0, 0] = 1;
        values[2, 3] = 0;
        string path = Path.Combine(TestPaths.NewTempDir(), "orientation.png");
        ReportPlots.Heatmap(path, "t", values, Tasks, Experts, null);

        using var bitmap = SKBitmap.Decode(path);
        var (left, top, right, bottom) = DataArea(bitmap);
        // Sample just inside the corner of a cell, away from the printed value in its centre.
        SKColor topLeft = bitmap.GetPixel(left + 4, top + 4);
        SKColor bottomRight = bitmap.GetPixel(right - 4, bottom - 4);
        Assert.True(topLeft.Red > 200 && topLeft.Green > 200 && topLeft.Blue < 100, $"top-left {topLeft}");
        Assert.True(bottomRight.Red < 100 && bottomRight.Green < 50 && bottomRight.Blue < 120, $"bottom-right {bottomRight}");
    }

    [Fact]
    public void Heatmap_with_nan_cells_constant_values_or_no_cells_does_not_throw()
    {
        string dir = TestPaths.NewTempDir();
        var withNaN = Matrix(seed: 3);
        withNaN[1, 2] = double.NaN;
        var allNaN = new double[2, 2] { { double.NaN, double.NaN }, { double.NaN, double.NaN } };
        var constant = new double[2, 2] { { 0.25, 0.25 }, { 0.25, 0.25 } };

        ReportPlots.Heatmap(Path.Combine(dir, "nan.png"), "t", withNaN, Tasks, Experts, "w");
        ReportPlots.Heatmap(Path.Combine(dir, "allnan.png"), "t", allNaN, ["a", "b"], ["x", "y"], "w");
        ReportPlots.Heatmap(Path.Combine(dir, "constant.png"), "t", constant, ["a", "b"], ["x", "y"], "w");
        var size = ReportPlots.Heatmap(Path.Combine(dir, "empty.png"), "t", new double[0, 0], [], [], null);

        foreach (string name in new[] { "nan", "allnan", "constant" }) AssertPng(Path.Combine(dir, name + ".png"));
        Assert.Equal(new FigureSize(800, 500), ReadPngSize(Path.Combine(dir, "empty.png")));
        Assert.Equal(new FigureSize(800, 500), size);
    }

    [Fact]
    public void Heatmap_with_labels_that_do_not_match_the_matrix_is_rejected()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "x.png");
        var e = Assert.Throws<ArgumentException>(() => ReportPlots.Heatmap(path, "t", Matrix(1), ["a"], Experts, null));
        Assert.Contains("3 rows but 1 row labels", e.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Grouped_bars_with_error_bars_are_a_png_of_the_requested_size()
    {
        string path = Path.Combine(TestPaths.NewTempDir(), "accuracy.png");
        var size = ReportPlots.GroupedBars(
            path, "Accuracy per task", Tasks,
            [("LoRA", [61.2, 30.5, 70.1]), ("LoRA-Mixer", [64.0, 33.9, 71.8])], "accuracy (%)",
            errors: [[1.1, 0.8, 0.5], null], width: 640, height: 480);

        Assert.Equal(new FigureSize(640, 480), size);
        Assert.Equal(size, ReadPngSize(path));
    }

    [Fact]
    public void Grouped_bars_depend_on_the_values()
    {
        string dir = TestPaths.NewTempDir();
        ReportPlots.GroupedBars(Path.Combine(dir, "a.png"), "t", Tasks, [("m", [1.0, 2.0, 3.0])], "y");
        ReportPlots.GroupedBars(Path.Combine(dir, "b.png"), "t", Tasks, [("m", [1.0, 2.5, 3.0])], "y");
        Assert.NotEqual(PixelHash(Path.Combine(dir, "a.png")), PixelHash(Path.Combine(dir, "b.png")));
    }

    [Fact]
    public void Grouped_bars_with_nan_or_no_data_do_not_throw()
    {
        string dir = TestPaths.NewTempDir();
        ReportPlots.GroupedBars(Path.Combine(dir, "nan.png"), "t", Tasks,
            [("a", [double.NaN, 2, 3]), ("b", [1, 2, double.PositiveInfinity])], "y", [[double.NaN, 0.1, 0.2], null]);
        ReportPlots.GroupedBars(Path.Combine(dir, "allnan.png"), "t", ["g"], [("a", [double.NaN])], "y");
        ReportPlots.GroupedBars(Path.Combine(dir, "noseries.png"), "t", Tasks, [], "y");
        ReportPlots.GroupedBars(Path.Combine(dir, "nogroups.png"), "t", [], [("a", [])], "y");

        foreach (string name in new[] { "nan", "allnan", "noseries", "nogroups" })
            Assert.Equal(new FigureSize(800, 500), ReadPngSize(Path.Combine(dir, name + ".png")));
    }

    [Fact]
    public void Grouped_bars_with_a_short_series_name_the_series()
    {
        var e = Assert.Throws<ArgumentException>(() => ReportPlots.GroupedBars(
            Path.Combine(TestPaths.NewTempDir(), "x.png"), "t", Tasks, [("LoRA", [1.0])], "y"));
        Assert.Contains("'LoRA' has 1 values for 3 groups", e.Message);
    }

    [Fact]
    public void Lines_are_a_png_of_the_default_size_and_depend_on_the_values()
    {
        string dir = TestPaths.NewTempDir();
        double[] steps = Enumerable.Range(0, 100).Select(i => (double)i).ToArray();
        double[] train = steps.Select(s => 3 * Math.Exp(-s / 30) + 0.5).ToArray();
        double[] valid = steps.Select(s => 3 * Math.Exp(-s / 40) + 0.7).ToArray();

        var size = ReportPlots.Lines(Path.Combine(dir, "a.png"), "Loss", [("train", steps, train), ("valid", steps, valid)], "step", "loss");
        ReportPlots.Lines(Path.Combine(dir, "b.png"), "Loss", [("train", steps, train), ("valid", steps, train)], "step", "loss");

        Assert.Equal(new FigureSize(800, 500), size);
        Assert.Equal(size, ReadPngSize(Path.Combine(dir, "a.png")));
        Assert.NotEqual(PixelHash(Path.Combine(dir, "a.png")), PixelHash(Path.Combine(dir, "b.png")));
    }

    [Fact]
    public void Lines_skip_nan_points_and_empty_series_without_throwing()
    {
        string dir = TestPaths.NewTempDir();
        double[] x = [0, 1, 2, 3, 4];
        double[] y = [2.0, double.NaN, 1.5, double.PositiveInfinity, 1.0];

        ReportPlots.Lines(Path.Combine(dir, "nan.png"), "t", [("a", x, y), ("empty", [], [])], "x", "y");
        ReportPlots.Lines(Path.Combine(dir, "allnan.png"), "t", [("a", [double.NaN], [1.0])], "x", "y");
        ReportPlots.Lines(Path.Combine(dir, "none.png"), "t", [], "x", "y");

        foreach (string name in new[] { "nan", "allnan", "none" }) AssertPng(Path.Combine(dir, name + ".png"));
    }

    [Fact]
    public void Rewriting_a_figure_replaces_it_and_leaves_no_temporary_file()
    {
        string dir = TestPaths.NewTempDir();
        string path = Path.Combine(dir, "loss.png");
        File.WriteAllText(path, "not a png");

        ReportPlots.Lines(path, "t", [("a", [0.0, 1.0], [1.0, 0.5])], "x", "y");

        AssertPng(path);
        Assert.Equal(["loss.png"], Directory.GetFiles(dir).Select(Path.GetFileName));
    }

    private static double[,] Matrix(int seed)
    {
        var random = new Random(seed);
        var m = new double[Tasks.Length, Experts.Length];
        for (int r = 0; r < Tasks.Length; r++) for (int c = 0; c < Experts.Length; c++) m[r, c] = random.NextDouble();
        return m;
    }

    private static void AssertPng(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 1000, $"{path} has only {bytes.Length} bytes");
        Assert.Equal(PngSignature, bytes[..8]);
    }

    // The IHDR chunk always comes first: length (13), "IHDR", then big-endian width and height.
    private static FigureSize ReadPngSize(string path)
    {
        AssertPng(path);
        byte[] head = File.ReadAllBytes(path)[..24];
        Assert.Equal("IHDR"u8.ToArray(), head[12..16]);
        return new FigureSize(
            BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(head.AsSpan(20)));
    }

    // Hash of the decoded pixels, so the comparison is about what is drawn, not how the encoder packed it.
    private static string PixelHash(string path)
    {
        using var bitmap = SKBitmap.Decode(path);
        return Convert.ToHexString(SHA256.HashData(bitmap.GetPixelSpan()));
    }

    // The heatmap fills the data area exactly; find it as the bounding box of saturated (non-grey) pixels
    // left of the colour bar, i.e. in the left 75% of the image.
    private static (int Left, int Top, int Right, int Bottom) DataArea(SKBitmap bitmap)
    {
        int left = int.MaxValue, top = int.MaxValue, right = -1, bottom = -1;
        for (int y = 0; y < bitmap.Height; y++)
        {
            for (int x = 0; x < bitmap.Width * 3 / 4; x++)
            {
                SKColor p = bitmap.GetPixel(x, y);
                int spread = Math.Max(p.Red, Math.Max(p.Green, p.Blue)) - Math.Min(p.Red, Math.Min(p.Green, p.Blue));
                if (spread < 60) continue;
                left = Math.Min(left, x); right = Math.Max(right, x);
                top = Math.Min(top, y); bottom = Math.Max(bottom, y);
            }
        }
        Assert.True(right > left && bottom > top, "no coloured area found");
        return (left, top, right, bottom);
    }
}
