namespace LoraMixer.Evaluation;

/// <summary>
/// Reads CoLA TSV: the public release and GLUE's <c>CoLA/train.tsv</c>/<c>dev.tsv</c> have no header and four
/// columns <c>source&lt;TAB&gt;label&lt;TAB&gt;original_label&lt;TAB&gt;sentence</c>; a file whose first line names
/// <c>sentence</c> and <c>label</c> columns (a Hugging Face <c>glue/cola</c> export) is read by those names.
/// </summary>
public static class ColaLoader
{
    /// <summary>The format named in error messages.</summary>
    public const string Format = "CoLA TSV without header \"source<TAB>label(0/1)<TAB>original_label<TAB>sentence\", or with a header naming \"sentence\" and \"label\"";

    /// <summary>Loads <paramref name="path"/>, skipping (and reporting) malformed lines.</summary>
    /// <exception cref="Errors.DataFormatException">The file is missing, empty or more than 1% of its lines are malformed.</exception>
    public static EvalDataset<LabeledSentence> Load(string path)
    {
        int sentenceColumn = 3, labelColumn = 1, columns = 4;
        bool IsHeader(string line)
        {
            var cells = line.Split('\t').Select(c => c.Trim().ToLowerInvariant()).ToArray();
            int s = Array.IndexOf(cells, "sentence"), l = Array.IndexOf(cells, "label");
            if (s < 0 || l < 0) return false;
            (sentenceColumn, labelColumn, columns) = (s, l, cells.Length);
            return true;
        }
        return DataLines.Read(path, "CoLA", Format, line =>
        {
            var cells = line.Split('\t');
            if (cells.Length != columns) throw new FormatException($"has {cells.Length} tab-separated columns, expected {columns}");
            string sentence = cells[sentenceColumn].Trim();
            if (sentence.Length == 0) throw new FormatException("the sentence is empty");
            return new LabeledSentence(sentence, DataLines.BinaryLabel(cells[labelColumn]));
        }, IsHeader);
    }
}
