using LoraMixer.Tokenization;

namespace LoraMixer.Tests.Generation;

/// <summary>Test double: id i is the character (char)(i + 32), so any id sequence decodes to visible text.</summary>
public sealed class CharTokenizer(int vocabSize, int? bos = 1, int? eos = 2) : ITokenizer
{
    public int VocabSize => vocabSize;
    public int? BosId => bos;
    public int? EosId => eos;

    public IReadOnlyList<int> Encode(string text, bool addBos = true)
    {
        var ids = text.Select(c => (int)c - 32).ToList();
        if (addBos && bos is int b) ids.Insert(0, b);
        return ids;
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true) =>
        new(ids.Where(i => !skipSpecialTokens || (i != bos && i != eos)).Select(i => (char)(i + 32)).ToArray());
}
