namespace LoraMixer.Evaluation;

/// <summary>
/// Reads SST-2 TSV. The shared copy has the header <c>label&lt;TAB&gt;content</c> (label first); GLUE's own files
/// have <c>sentence&lt;TAB&gt;label</c>. A header naming <c>label</c> decides the column order; without a header
/// the order is label, sentence.
/// </summary>
public static class Sst2Loader
{
    /// <summary>The format named in error messages.</summary>
    public const string Format = "SST-2 TSV \"label<TAB>sentence\" (0 = negative, 1 = positive), optionally with a header line naming the \"label\" column";

    /// <summary>Loads <paramref name="path"/>, skipping (and reporting) malformed lines.</summary>
    /// <exception cref="Errors.DataFormatException">The file is missing, empty or more than 1% of its lines are malformed.</exception>
    public static EvalDataset<LabeledSentence> Load(string path)
    {
        int labelColumn = 0;
        bool IsHeader(string line)
        {
            var cells = line.Split('\t');
            int at = Array.FindIndex(cells, c => c.Trim().Equals("label", StringComparison.OrdinalIgnoreCase));
            if (at < 0 || cells.Length != 2) return false;
            labelColumn = at;
            return true;
        }
        return DataLines.Read(path, "SST-2", Format, line =>
        {
            var cells = line.Split('\t');
            if (cells.Length != 2) throw new FormatException($"has {cells.Length} tab-separated columns, expected 2");
            string sentence = cells[1 - labelColumn].Trim();
            if (sentence.Length == 0) throw new FormatException("the sentence is empty");
            return new LabeledSentence(sentence, DataLines.BinaryLabel(cells[labelColumn]));
        }, IsHeader);
    }
}
