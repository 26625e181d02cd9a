using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Data;

/// <summary>
/// A tokenizer simple enough to work ids out by hand: BOS 1, EOS 2, pad 0, and each character c is id c - 'a' + 10
/// ('a' = 10, 'b' = 11, ...; space = 9).
/// </summary>
public sealed class CharTokenizer(bool addsBos = true, bool hasEos = true) : ITokenizer
{
    public int VocabSize => 40;
    public int? BosId => addsBos ? 1 : null;
    public int? EosId => hasEos ? 2 : null;

    public static int Id(char c) => c == ' ' ? 9 : c - 'a' + 10;

    public IReadOnlyList<int> Encode(string text, bool addBos = true)
    {
        var ids = new List<int>();
        if (addBos && addsBos) ids.Add(1);
        ids.AddRange(text.Select(Id));
        return ids;
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true) =>
        new([.. ids.Where(i => i >= 9).Select(i => i == 9 ? ' ' : (char)('a' + i - 10))]);
}
