using System.Text.RegularExpressions;

namespace LoraMixer.Evaluation;

/// <summary>
/// GSM8K answer extraction and matching as lm-evaluation-harness's <c>gsm8k</c> task: "strict-match" takes the first
/// <c>#### (\-?[0-9\.\,]+)</c>, "flexible-extract" the last match of <c>(-?[$0-9.,]{2,})|(-?[0-9]+)</c>; both sides are
/// then normalised by the task's <c>regexes_to_ignore</c> (",", "$", everything up to "#### ", one trailing ".")
/// and compared as strings, ignoring case. So "5.50" and "5.5" differ, as in lm-eval.
/// </summary>
public static partial class Gsm8kAnswer
{
    /// <summary>What lm-eval's regex filter yields when nothing matches; it never equals a gold answer.</summary>
    public const string Invalid = "[invalid]";

    /// <summary>The strict-match answer: the number after the first "#### ", or <see cref="Invalid"/>.</summary>
    public static string ExtractStrict(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var match = StrictRegex().Match(text);
        return match.Success ? match.Groups[1].Value : Invalid;
    }

    /// <summary>The strict-match answer of <c>gsm8k_cot_zeroshot</c>: the number after the first "The answer is ", or <see cref="Invalid"/>.</summary>
    public static string ExtractStrictCot(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var match = StrictCotRegex().Match(text);
        return match.Success ? match.Groups[1].Value : Invalid;
    }

    /// <summary>The flexible-extract answer: the last number-like span, or <see cref="Invalid"/>.</summary>
    public static string ExtractFlexible(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var matches = FlexibleRegex().Matches(text);
        if (matches.Count == 0) return Invalid;
        var last = matches[^1];
        // lm-eval: a tuple of groups yields the first non-empty one.
        return last.Groups[1].Success && last.Groups[1].Length > 0 ? last.Groups[1].Value : last.Groups[2].Value;
    }

    /// <summary>Applies lm-eval's gsm8k <c>regexes_to_ignore</c> in order: ",", "\$", "(?s).*#### ", "\.$"; then trims.</summary>
    public static string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Replace(",", "", StringComparison.Ordinal).Replace("$", "", StringComparison.Ordinal);
        s = UpToMarkerRegex().Replace(s, "");
        s = TrailingDotRegex().Replace(s, "");
        return s.Trim();
    }

    /// <summary>Whether <paramref name="extracted"/> equals <paramref name="gold"/> after <see cref="Normalize"/> (ignoring case).</summary>
    public static bool IsMatch(string extracted, string gold) =>
        extracted != Invalid && string.Equals(Normalize(extracted), Normalize(gold), StringComparison.OrdinalIgnoreCase);

    [GeneratedRegex(@"#### (\-?[0-9\.\,]+)")]
    private static partial Regex StrictRegex();

    // lm-eval's pattern ends in an unescaped "." (any character), kept as written.
    [GeneratedRegex(@"The answer is (\-?[0-9\.\,]+).")]
    private static partial Regex StrictCotRegex();

    [GeneratedRegex(@"(-?[$0-9.,]{2,})|(-?[0-9]+)")]
    private static partial Regex FlexibleRegex();

    [GeneratedRegex(@"^[\s\S]*#### ")]
    private static partial Regex UpToMarkerRegex();

    // Python's "\.$" also matches before a final newline.
    [GeneratedRegex(@"\.(?=\n?\z)")]
    private static partial Regex TrailingDotRegex();
}
