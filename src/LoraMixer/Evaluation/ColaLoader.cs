namespace LoraMixer.Evaluation;

/// <summary>Reads CoLA's raw TSV without a header: <c>source&lt;TAB&gt;label&lt;TAB&gt;original_label&lt;TAB&gt;sentence</c>.</summary>
public static class ColaLoader
{
    /// <summary>The format named in error messages.</summary>
    public const string Format = "CoLA TSV without header \"source<TAB>label(0/1)<TAB>original_label<TAB>sentence\"";

    /// <summary>Loads <paramref name="path"/>, skipping (and reporting) malformed lines.</summary>
    /// <exception cref="Errors.DataFormatException">The file is missing, empty or more than 1% of its lines are malformed.</exception>
    public static EvalDataset<LabeledSentence> Load(string path) => DataLines.Read(path, "CoLA", Format, line =>
    {
        var cells = line.Split('\t');
        if (cells.Length != 4) throw new FormatException($"has {cells.Length} tab-separated columns, expected 4");
        string sentence = cells[3].Trim();
        if (sentence.Length == 0) throw new FormatException("the sentence is empty");
        return new LabeledSentence(sentence, DataLines.BinaryLabel(cells[1]));
    });
}
