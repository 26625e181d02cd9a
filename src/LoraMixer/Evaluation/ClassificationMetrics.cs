namespace LoraMixer.Evaluation;

/// <summary>Accuracy and Matthews correlation over predicted and gold labels.</summary>
public static class ClassificationMetrics
{
    /// <summary>Fraction of positions where <paramref name="predicted"/> equals <paramref name="gold"/> (NaN when empty).</summary>
    public static double Accuracy(IReadOnlyList<int> predicted, IReadOnlyList<int> gold)
    {
        CheckLengths(predicted, gold);
        if (gold.Count == 0) return double.NaN;
        int correct = 0;
        for (int i = 0; i < gold.Count; i++) if (predicted[i] == gold[i]) correct++;
        return (double)correct / gold.Count;
    }

    /// <summary>
    /// Matthews correlation coefficient for binary labels (1 = positive):
    /// (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)), and 0 when the denominator is 0, as sklearn's
    /// <c>matthews_corrcoef</c> (which lm-eval uses) returns.
    /// </summary>
    public static double MatthewsCorrelation(IReadOnlyList<int> predicted, IReadOnlyList<int> gold)
    {
        CheckLengths(predicted, gold);
        double tp = 0, tn = 0, fp = 0, fn = 0;
        for (int i = 0; i < gold.Count; i++)
        {
            bool p = predicted[i] != 0, g = gold[i] != 0;
            if (p && g) tp++;
            else if (!p && !g) tn++;
            else if (p) fp++;
            else fn++;
        }
        double denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn);
        return denominator == 0 ? 0.0 : (tp * tn - fp * fn) / Math.Sqrt(denominator);
    }

    private static void CheckLengths(IReadOnlyList<int> predicted, IReadOnlyList<int> gold)
    {
        ArgumentNullException.ThrowIfNull(predicted);
        ArgumentNullException.ThrowIfNull(gold);
        if (predicted.Count != gold.Count)
            throw new ArgumentException($"{predicted.Count} predictions for {gold.Count} gold labels");
    }
}
