namespace LoraMixer.Tokenization;

/// <summary>Text ↔ token ids for one model.</summary>
public interface ITokenizer
{
    /// <summary>Number of ids, special tokens included.</summary>
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence id, when the model uses one.</summary>
    int? BosId { get; }

    /// <summary>End-of-sequence id, when the model has one.</summary>
    int? EosId { get; }

    /// <summary>Encodes text; prepends BOS when <paramref name="addBos"/> and the tokenizer's config asks for it.</summary>
    IReadOnlyList<int> Encode(string text, bool addBos = true);

    /// <summary>Decodes ids to text.</summary>
    /// <remarks>
    /// Ids outside the vocabulary (a model's padded embedding rows) decode to nothing, as in Hugging Face
    /// tokenizers, so a stray sample cannot end a generation with an exception. Invalid UTF-8 from byte tokens
    /// becomes U+FFFD.
    /// </remarks>
    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true);
}
