namespace LoraMixer.Tokenization;

/// <summary>
/// Turns generated ids into text piece by piece, never emitting a broken UTF-8 sequence when a
/// character spans several tokens (STUB: to be implemented).
/// </summary>
public sealed class StreamingDecoder
{
    /// <summary>Creates a decoder for one sequence.</summary>
    public StreamingDecoder(ITokenizer tokenizer, bool skipSpecialTokens = true) { _ = tokenizer; _ = skipSpecialTokens; }

    /// <summary>Adds one id; returns the text that is now complete (possibly empty).</summary>
    public string Push(int id) => throw new NotImplementedException();

    /// <summary>Returns whatever is still held back at the end of the sequence.</summary>
    public string Flush() => throw new NotImplementedException();
}
