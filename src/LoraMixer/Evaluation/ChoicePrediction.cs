using System.Text;

namespace LoraMixer.Evaluation;

/// <summary>
/// lm-eval's multiple-choice predictions from the choices' log-likelihoods: <c>acc</c> takes the arg-max,
/// <c>acc_norm</c> the arg-max of log-likelihood / <c>len(choice)</c> (Python's length: Unicode code points),
/// <c>acc_bytes</c> of log-likelihood / UTF-8 bytes; ties go to the first (numpy's argmax).
/// </summary>
public static class ChoicePrediction
{
    /// <summary>The arg-max of the raw log-likelihoods.</summary>
    public static int Raw(IReadOnlyList<double> logLikelihoods) => ArgMax(logLikelihoods);

    /// <summary>The arg-max of log-likelihood per character of the choice (lm-eval's acc_norm).</summary>
    public static int PerCharacter(IReadOnlyList<double> logLikelihoods, IReadOnlyList<string> choices) =>
        ArgMax(Divide(logLikelihoods, choices, Characters));

    /// <summary>The arg-max of log-likelihood per UTF-8 byte of the choice (lm-eval's acc_bytes).</summary>
    public static int PerByte(IReadOnlyList<double> logLikelihoods, IReadOnlyList<string> choices) =>
        ArgMax(Divide(logLikelihoods, choices, Encoding.UTF8.GetByteCount));

    /// <summary>Python's <c>len</c> of a string: Unicode code points (a surrogate pair counts once).</summary>
    public static int Characters(string text) => text.EnumerateRunes().Count();

    private static double[] Divide(IReadOnlyList<double> logLikelihoods, IReadOnlyList<string> choices, Func<string, int> length)
    {
        ArgumentNullException.ThrowIfNull(logLikelihoods);
        ArgumentNullException.ThrowIfNull(choices);
        if (logLikelihoods.Count != choices.Count) throw new ArgumentException($"{logLikelihoods.Count} log-likelihoods for {choices.Count} choices");
        return logLikelihoods.Select((v, c) => v / Math.Max(1, length(choices[c]))).ToArray();
    }

    private static int ArgMax(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("no choices");
        int best = 0;
        for (int i = 1; i < values.Count; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
