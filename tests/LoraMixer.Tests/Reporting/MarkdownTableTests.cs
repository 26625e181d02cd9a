using LoraMixer.Reporting;

namespace LoraMixer.Tests.Reporting;

public sealed class MarkdownTableTests
{
    private static readonly string[] Methods = ["LoRA", "MoLE", "LoRA-Mixer"];
    private static readonly string[] Tasks = ["ARC", "GSM8K"];

    [Fact]
    public void Comparison_bolds_the_maximum_of_each_column()
    {
        double?[,] means = { { 61.23, 30.0 }, { 60.0, 35.55 }, { 64.0, 33.0 } };

        string table = MarkdownTable.Comparison(Methods, Tasks, means, null);

        Assert.Equal(
            "| Method | ARC | GSM8K |\n" +
            "| :--- | ---: | ---: |\n" +
            "| LoRA | 61.2 | 30.0 |\n" +
            "| MoLE | 60.0 | **35.5** |\n" +
            "| LoRA-Mixer | **64.0** | 33.0 |\n",
            table);
    }

    [Fact]
    public void Comparison_bolds_the_minimum_when_lower_is_better()
    {
        double?[,] means = { { 1.5, 2.0 }, { 1.2, 2.5 }, { 1.9, 1.1 } };

        string[] rows = Lines(MarkdownTable.Comparison(Methods, Tasks, means, null, higherIsBetter: false, decimals: 2));

        Assert.Equal("| LoRA | 1.50 | 2.00 |", rows[2]);
        Assert.Equal("| MoLE | **1.20** | 2.50 |", rows[3]);
        Assert.Equal("| LoRA-Mixer | 1.90 | **1.10** |", rows[4]);
    }

    [Fact]
    public void Comparison_bolds_every_mean_that_ties_for_best_once_rounded()
    {
        double?[,] means = { { 70.0, 1 }, { 70.04, 2 }, { 69.0, 2 } };

        string[] rows = Lines(MarkdownTable.Comparison(Methods, Tasks, means, null));

        Assert.Equal("| LoRA | **70.0** | 1.0 |", rows[2]);
        Assert.Equal("| MoLE | **70.0** | **2.0** |", rows[3]);
        Assert.Equal("| LoRA-Mixer | 69.0 | **2.0** |", rows[4]);
    }

    [Fact]
    public void Comparison_shows_mean_plus_minus_sd_and_a_dash_for_missing_values()
    {
        double?[,] means = { { 61.0, null }, { double.NaN, 35.0 }, { 64.0, 33.0 } };
        double?[,] sds = { { 1.25, 0.5 }, { 2.0, 0.75 }, { null, double.NaN } };

        string[] rows = Lines(MarkdownTable.Comparison(Methods, Tasks, means, sds));

        Assert.Equal("| LoRA | 61.0 ± 1.2 | – |", rows[2]);
        Assert.Equal("| MoLE | – | **35.0 ± 0.8** |", rows[3]);
        Assert.Equal("| LoRA-Mixer | **64.0** | 33.0 |", rows[4]);
    }

    [Fact]
    public void Comparison_with_a_column_of_missing_values_bolds_nothing_there()
    {
        double?[,] means = { { 1.0, null }, { 2.0, null }, { 3.0, null } };

        string[] rows = Lines(MarkdownTable.Comparison(Methods, Tasks, means, null));

        Assert.All(rows[2..], r => Assert.EndsWith("| – |", r));
        Assert.Equal(1, string.Concat(rows).Split("**").Length / 2);
    }

    [Fact]
    public void Comparison_escapes_pipes_in_labels_and_caption_and_writes_no_minus_zero()
    {
        double?[,] means = { { -0.04 } };

        string table = MarkdownTable.Comparison(["a|b"], ["x | y"], means, null, caption: "Δ acc | seed 0", rowHeader: "Δ");

        Assert.Equal(
            "Δ acc \\| seed 0\n\n" +
            "| Δ | x \\| y |\n" +
            "| :--- | ---: |\n" +
            "| a\\|b | **0.0** |\n",
            table);
    }

    [Fact]
    public void Comparison_rejects_labels_that_do_not_match_the_means()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            MarkdownTable.Comparison(Methods, ["only one"], new double?[3, 2], null));
        Assert.Contains("2 columns", e.Message);
        Assert.Throws<ArgumentException>(() => MarkdownTable.Comparison(Methods, Tasks, new double?[3, 2], new double?[2, 2]));
    }

    [Fact]
    public void Simple_escapes_cells_and_pads_short_rows()
    {
        string table = MarkdownTable.Simple(["name", "value"], [["a|b", "1"], ["line\nbreak"]]);

        Assert.Equal(
            "| name | value |\n" +
            "| --- | --- |\n" +
            "| a\\|b | 1 |\n" +
            "| line break |  |\n",
            table);
    }

    [Fact]
    public void Simple_rejects_a_row_longer_than_the_header()
    {
        var e = Assert.Throws<ArgumentException>(() => MarkdownTable.Simple(["a"], [["1", "2"]]));
        Assert.Contains("row 0 has 2 cells", e.Message);
    }

    private static string[] Lines(string table) => table.TrimEnd('\n').Split('\n');
}
