using System.Text;
using System.Text.Json;

namespace LoraMixer.Tokenization;

/// <summary>A piece of text on its way to the BPE model; <see cref="AtStart"/> marks the piece that begins the input.</summary>
internal readonly record struct PreToken(string Text, bool AtStart);

/// <summary>A Hugging Face tokenizers pre-tokenizer: splits (and possibly rewrites) pieces before BPE.</summary>
internal abstract class HfPreTokenizer
{
    // GPT-2's pattern, which ByteLevel uses when use_regex is true.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    private static readonly Lazy<CodePointRegex> Gpt2Regex = new(() => new CodePointRegex(Gpt2Pattern));

    public abstract List<PreToken> PreTokenize(List<PreToken> pieces);

    /// <summary>Whether this pre-tokenizer maps text to GPT-2's byte alphabet (so the vocabulary is byte-level).</summary>
    public virtual bool IsByteLevel => false;

    private enum Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

    /// <summary>Builds the pre-tokenizer described by <paramref name="e"/>, or null for JSON null.</summary>
    public static HfPreTokenizer? Create(JsonElement e, HfJson file)
    {
        if (HfJson.IsNull(e)) return null;
        string type = file.RequiredType(e, "pre_tokenizer");
        switch (type)
        {
            case "Sequence":
                var parts = new List<HfPreTokenizer>();
                foreach (var item in file.Array(e, "pretokenizers", "Sequence pre_tokenizer").EnumerateArray())
                    if (Create(item, file) is { } p) parts.Add(p);
                return new Sequence(parts);
            case "ByteLevel":
                return new ByteLevel(HfJson.Bool(e, "add_prefix_space", true), HfJson.Bool(e, "use_regex", true));
            case "Split":
                var (literal, regex) = file.Pattern(e, "Split pre_tokenizer");
                string behavior = HfJson.OptionalString(e, "behavior") ?? "Isolated";
                if (!Enum.TryParse<Behavior>(behavior, out var b)) throw file.Unsupported($"Split behavior \"{behavior}\"");
                return new Split(literal, regex, b, HfJson.Bool(e, "invert", false));
            case "Metaspace":
                return CreateMetaspace(e, file);
            case "Digits":
                return new CharSplit(c => Rune.IsNumber(c), HfJson.Bool(e, "individual_digits", false) ? Behavior.Isolated : Behavior.Contiguous);
            case "WhitespaceSplit":
                return new CharSplit(Rune.IsWhiteSpace, Behavior.Removed);
            default:
                throw file.Unsupported($"pre_tokenizer type \"{type}\"");
        }
    }

    private static Metaspace CreateMetaspace(JsonElement e, HfJson file)
    {
        string replacement = HfJson.OptionalString(e, "replacement") ?? "\u2581";
        // Older files say add_prefix_space; newer ones prepend_scheme ("always", "first", "never").
        string scheme = HfJson.OptionalString(e, "prepend_scheme") ?? (HfJson.Bool(e, "add_prefix_space", true) ? "always" : "never");
        if (scheme is not ("always" or "first" or "never")) throw file.Unsupported($"Metaspace prepend_scheme \"{scheme}\"");
        return new Metaspace(replacement, scheme, HfJson.Bool(e, "split", true));
    }

    /// <summary>Splits every piece at the given ranges ((start, end, isMatch), covering the piece) by tokenizers' rules.</summary>
    private static void SplitInto(List<PreToken> output, PreToken piece, List<(int Start, int End, bool IsMatch)> ranges, Behavior behavior)
    {
        var kept = new List<(int Start, int End)>();
        bool previousMatch = false;
        switch (behavior)
        {
            case Behavior.Removed:
                foreach (var r in ranges) if (!r.IsMatch) kept.Add((r.Start, r.End));
                break;
            case Behavior.Isolated:
                foreach (var r in ranges) kept.Add((r.Start, r.End));
                break;
            case Behavior.MergedWithPrevious:
                foreach (var r in ranges)
                {
                    if (r.IsMatch && !previousMatch && kept.Count > 0) kept[^1] = (kept[^1].Start, r.End);
                    else kept.Add((r.Start, r.End));
                    previousMatch = r.IsMatch;
                }
                break;
            case Behavior.MergedWithNext:
                for (int i = ranges.Count - 1; i >= 0; i--)
                {
                    var r = ranges[i];
                    if (r.IsMatch && !previousMatch && kept.Count > 0) kept[^1] = (r.Start, kept[^1].End);
                    else kept.Add((r.Start, r.End));
                    previousMatch = r.IsMatch;
                }
                kept.Reverse();
                break;
            case Behavior.Contiguous:
                for (int i = 0; i < ranges.Count; i++)
                {
                    var r = ranges[i];
                    if (i > 0 && r.IsMatch == previousMatch) kept[^1] = (kept[^1].Start, r.End);
                    else kept.Add((r.Start, r.End));
                    previousMatch = r.IsMatch;
                }
                break;
        }
        foreach (var (start, end) in kept)
            if (end > start) output.Add(new PreToken(piece.Text[start..end], piece.AtStart && start == 0));
    }

    /// <summary>Turns match ranges into ranges covering the whole text, gaps marked as non-matches.</summary>
    private static List<(int Start, int End, bool IsMatch)> Cover(int length, IEnumerable<(int Start, int End)> matches, bool invert)
    {
        var ranges = new List<(int, int, bool)>();
        int last = 0;
        foreach (var (start, end) in matches)
        {
            if (start > last) ranges.Add((last, start, invert));
            ranges.Add((start, end, !invert));
            last = end;
        }
        if (last < length) ranges.Add((last, length, invert));
        return ranges;
    }

    private static IEnumerable<(int Start, int End)> LiteralMatches(string text, string literal)
    {
        if (literal.Length == 0) yield break;
        for (int i = text.IndexOf(literal, StringComparison.Ordinal); i >= 0; i = text.IndexOf(literal, i + literal.Length, StringComparison.Ordinal))
            yield return (i, i + literal.Length);
    }

    private sealed class Sequence(List<HfPreTokenizer> parts) : HfPreTokenizer
    {
        public override bool IsByteLevel => parts.Any(p => p.IsByteLevel);

        public override List<PreToken> PreTokenize(List<PreToken> pieces)
        {
            foreach (var part in parts) pieces = part.PreTokenize(pieces);
            return pieces;
        }
    }

    private sealed class ByteLevel(bool addPrefixSpace, bool useRegex) : HfPreTokenizer
    {
        public override bool IsByteLevel => true;

        public override List<PreToken> PreTokenize(List<PreToken> pieces)
        {
            var output = new List<PreToken>();
            foreach (var original in pieces)
            {
                var piece = addPrefixSpace && !original.Text.StartsWith(' ') ? original with { Text = " " + original.Text } : original;
                if (useRegex) SplitInto(output, piece, Cover(piece.Text.Length, Gpt2Regex.Value.Matches(piece.Text), false), Behavior.Isolated);
                else output.Add(piece);
            }
            for (int i = 0; i < output.Count; i++) output[i] = output[i] with { Text = ByteLevelAlphabet.Encode(output[i].Text) };
            return output;
        }
    }

    private sealed class Split(string? literal, CodePointRegex? regex, Behavior behavior, bool invert) : HfPreTokenizer
    {
        public override List<PreToken> PreTokenize(List<PreToken> pieces)
        {
            var output = new List<PreToken>();
            foreach (var piece in pieces)
            {
                var matches = regex is not null ? regex.Matches(piece.Text) : LiteralMatches(piece.Text, literal!);
                SplitInto(output, piece, Cover(piece.Text.Length, matches, invert), behavior);
            }
            return output;
        }
    }

    private sealed class CharSplit(Func<Rune, bool> predicate, Behavior behavior) : HfPreTokenizer
    {
        public override List<PreToken> PreTokenize(List<PreToken> pieces)
        {
            var output = new List<PreToken>();
            foreach (var piece in pieces)
            {
                // tokenizers' char-predicate pattern: each matching char is one match, gaps run together.
                var matches = new List<(int, int)>();
                int index = 0;
                foreach (var rune in piece.Text.EnumerateRunes())
                {
                    if (predicate(rune)) matches.Add((index, index + rune.Utf16SequenceLength));
                    index += rune.Utf16SequenceLength;
                }
                SplitInto(output, piece, Cover(piece.Text.Length, matches, false), behavior);
            }
            return output;
        }
    }

    private sealed class Metaspace(string replacement, string scheme, bool split) : HfPreTokenizer
    {
        public override List<PreToken> PreTokenize(List<PreToken> pieces)
        {
            var output = new List<PreToken>();
            foreach (var original in pieces)
            {
                string text = original.Text.Replace(" ", replacement, StringComparison.Ordinal);
                bool prepend = scheme == "always" || (scheme == "first" && original.AtStart);
                if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal)) text = replacement + text;
                var piece = original with { Text = text };
                if (split) SplitInto(output, piece, Cover(text.Length, LiteralMatches(text, replacement), false), Behavior.MergedWithNext);
                else output.Add(piece);
            }
            return output;
        }
    }
}
