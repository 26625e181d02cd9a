namespace LoraMixer.Tokenization;

/// <summary>One entry of tokenizer.json's "added_tokens".</summary>
internal sealed record HfAddedToken(int Id, string Content, bool SingleWord, bool LStrip, bool RStrip, bool Normalized, bool Special);

/// <summary>
/// Finds added tokens in text the way tokenizers' AddedVocabulary does: leftmost-longest whole-string matches,
/// with the single_word, lstrip and rstrip options, before any BPE.
/// </summary>
internal sealed class HfAddedTokens
{
    private readonly Dictionary<char, HfAddedToken[]> _byFirstChar;

    public HfAddedTokens(IEnumerable<HfAddedToken> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>Splits <paramref name="text"/> into text runs (Token null) and added tokens, in order; empty runs are dropped.</summary>
    public List<(HfAddedToken? Token, string Text, int Offset)> Split(string text)
    {
        var result = new List<(HfAddedToken?, string, int)>();
        int consumed = 0;
        int i = 0;
        while (i < text.Length)
        {
            var match = LongestAt(text, i);
            if (match is null) { i++; continue; }
            int start = i, stop = i + match.Content.Length;
            if (match.SingleWord && ((start > 0 && IsWordChar(text[start - 1])) || (stop < text.Length && IsWordChar(text[stop]))))
            {
                i++;
                continue;
            }
            if (match.LStrip)
                while (start > consumed && char.IsWhiteSpace(text[start - 1])) start--;
            if (match.RStrip)
                while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            if (start > consumed) result.Add((null, text[consumed..start], consumed));
            result.Add((match, text[start..stop], start));
            consumed = stop;
            i = stop;
        }
        if (consumed < text.Length) result.Add((null, text[consumed..], consumed));
        return result;
    }

    private HfAddedToken? LongestAt(string text, int i)
    {
        if (!_byFirstChar.TryGetValue(text[i], out var candidates)) return null;
        foreach (var token in candidates)
            if (string.CompareOrdinal(text, i, token.Content, 0, token.Content.Length) == 0 && i + token.Content.Length <= text.Length) return token;
        return null;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
