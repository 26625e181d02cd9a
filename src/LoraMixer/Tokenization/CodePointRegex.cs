using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LoraMixer.Tokenization;

/// <summary>
/// Runs a Hugging Face pre-tokenizer regex (written for Oniguruma, which sees code points) with .NET's Regex
/// (which sees UTF-16 units). Two gaps are closed: possessive quantifiers become atomic groups, and characters
/// outside the BMP are matched through a stand-in BMP character of the same Unicode category, so
/// <c>\p{L}</c> still matches "𠀀" and an emoji is still a symbol rather than two surrogates.
/// </summary>
internal sealed class CodePointRegex
{
    private static readonly char[] CategoryStandIn = BuildStandIns();

    private readonly Regex _regex;

    /// <summary>Compiles <paramref name="pattern"/>; throws <see cref="ArgumentException"/> when .NET cannot parse it.</summary>
    public CodePointRegex(string pattern)
    {
        Pattern = pattern;
        _regex = new Regex(RewritePossessive(pattern), RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    /// <summary>The pattern as written in the tokenizer file.</summary>
    public string Pattern { get; }

    /// <summary>Non-overlapping matches as [start, end) ranges of UTF-16 indices into <paramref name="text"/>.</summary>
    public List<(int Start, int End)> Matches(string text)
    {
        var result = new List<(int, int)>();
        if (!HasSurrogatePair(text))
        {
            for (var m = _regex.Match(text); m.Success; m = m.NextMatch()) result.Add((m.Index, m.Index + m.Length));
            return result;
        }

        // proxy holds one char per code point; map[k] is the index in text where proxy char k starts.
        var proxy = new StringBuilder(text.Length);
        var map = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length; i++)
        {
            map.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                proxy.Append(CategoryStandIn[(int)category]);
                i++;
            }
            else
            {
                proxy.Append(text[i]);
            }
        }
        map.Add(text.Length);
        for (var m = _regex.Match(proxy.ToString()); m.Success; m = m.NextMatch())
            result.Add((map[m.Index], map[m.Index + m.Length]));
        return result;
    }

    private static bool HasSurrogatePair(string text)
    {
        foreach (char c in text)
            if (char.IsSurrogate(c)) return true;
        return false;
    }

    // Stand-ins start the search at U+0370 so no stand-in case-folds to an ASCII letter used in patterns.
    private static char[] BuildStandIns()
    {
        int count = Enum.GetValues<UnicodeCategory>().Length;
        var standIn = new char[count];
        var found = new bool[count];
        foreach (var (from, to) in new[] { (0x370, 0xFFFF), (0x80, 0x370), (0, 0x80) })
        {
            for (int c = from; c < to; c++)
            {
                if (c is >= 0xD800 and <= 0xDFFF) continue;
                int category = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
                if (found[category]) continue;
                found[category] = true;
                standIn[category] = (char)c;
            }
        }
        standIn[(int)UnicodeCategory.Surrogate] = '\uFFFD';
        return standIn;
    }

    /// <summary>Turns <c>X++</c>, <c>X*+</c>, <c>X?+</c>, <c>X{n,m}+</c> into <c>(?&gt;X+)</c> etc.; .NET has no possessive quantifiers.</summary>
    internal static string RewritePossessive(string pattern)
    {
        if (!(pattern.Contains("++") || pattern.Contains("*+") || pattern.Contains("?+") || pattern.Contains("}+"))) return pattern;
        var sb = new StringBuilder(pattern.Length + 16);
        var groupStarts = new Stack<int>();
        int lastAtom = -1;
        int i = 0;
        while (i < pattern.Length)
        {
            char c = pattern[i];
            if (c == '\\')
            {
                int length = EscapeLength(pattern, i);
                lastAtom = sb.Length;
                sb.Append(pattern, i, length);
                i += length;
            }
            else if (c == '[')
            {
                int end = ClassEnd(pattern, i);
                lastAtom = sb.Length;
                sb.Append(pattern, i, end - i);
                i = end;
            }
            else if (c == '(')
            {
                groupStarts.Push(sb.Length);
                sb.Append(c);
                i++;
                // "(?" opens a group construct, not a quantifier on nothing.
                if (i < pattern.Length && pattern[i] == '?') { sb.Append('?'); i++; }
                lastAtom = -1;
            }
            else if (c == ')')
            {
                sb.Append(c);
                i++;
                lastAtom = groupStarts.Count > 0 ? groupStarts.Pop() : -1;
            }
            else if (c is '*' or '+' or '?' || (c == '{' && QuantifierBraceEnd(pattern, i) > 0))
            {
                int end = c == '{' ? QuantifierBraceEnd(pattern, i) : i + 1;
                string quantifier = pattern[i..end];
                i = end;
                if (i < pattern.Length && pattern[i] == '+' && lastAtom >= 0)
                {
                    string atom = sb.ToString(lastAtom, sb.Length - lastAtom);
                    sb.Length = lastAtom;
                    sb.Append("(?>").Append(atom).Append(quantifier).Append(')');
                    i++;
                }
                else
                {
                    sb.Append(quantifier);
                }
                lastAtom = -1;
            }
            else
            {
                lastAtom = c == '|' ? -1 : sb.Length;
                sb.Append(c);
                i++;
            }
        }
        return sb.ToString();
    }

    private static int EscapeLength(string p, int i)
    {
        if (i + 1 >= p.Length) return 1;
        char e = p[i + 1];
        if ((e is 'p' or 'P') && i + 2 < p.Length && p[i + 2] == '{')
        {
            int close = p.IndexOf('}', i + 3);
            return close < 0 ? p.Length - i : close - i + 1;
        }
        if (e == 'x') return Math.Min(4, p.Length - i);
        if (e == 'u') return Math.Min(6, p.Length - i);
        return 2;
    }

    private static int ClassEnd(string p, int i)
    {
        int j = i + 1;
        if (j < p.Length && p[j] == '^') j++;
        if (j < p.Length && p[j] == ']') j++;
        int depth = 1;
        while (j < p.Length)
        {
            if (p[j] == '\\') { j += EscapeLength(p, j); continue; }
            if (p[j] == '[') depth++;
            else if (p[j] == ']' && --depth == 0) return j + 1;
            j++;
        }
        return p.Length;
    }

    private static int QuantifierBraceEnd(string p, int i)
    {
        int j = i + 1;
        bool digits = false;
        while (j < p.Length && (char.IsAsciiDigit(p[j]) || p[j] == ','))
        {
            digits |= char.IsAsciiDigit(p[j]);
            j++;
        }
        return digits && j < p.Length && p[j] == '}' ? j + 1 : -1;
    }
}
