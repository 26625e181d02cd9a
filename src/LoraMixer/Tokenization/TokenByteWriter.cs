using System.Text;

namespace LoraMixer.Tokenization;

/// <summary>
/// Turns ids into the UTF-8 bytes of the decoded text one id at a time. <see cref="ITokenizer.Decode"/> and
/// <see cref="StreamingDecoder"/> both run on it, so streamed text and one-shot text cannot drift apart;
/// per-sequence rules (SentencePiece dropping the first piece's leading space) live in its state.
/// </summary>
internal abstract class TokenByteWriter
{
    /// <summary>Appends the bytes that <paramref name="id"/> contributes at this point of the sequence.</summary>
    public abstract void Append(int id, List<byte> output);

    /// <summary>Decodes a whole id list with a fresh writer.</summary>
    public static string DecodeAll(TokenByteWriter writer, IReadOnlyList<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>(ids.Count * 4);
        foreach (int id in ids) writer.Append(id, bytes);
        // Replacement (not exceptions) for invalid bytes: a model may sample a stray byte token.
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }
}
