using System.Text;

namespace LoraMixer.Tokenization;

/// <summary>
/// Turns generated ids into text piece by piece. Bytes of a character split across tokens (byte-fallback
/// pieces, byte-level BPE) are held back until the character is complete, so no chunk ends in a broken UTF-8
/// sequence, and all chunks from <see cref="Push"/> plus <see cref="Flush"/> concatenate to exactly
/// <see cref="ITokenizer.Decode"/> of all ids (including SentencePiece dropping the first piece's leading space).
/// </summary>
public sealed class StreamingDecoder
{
    private readonly ITokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly TokenByteWriter? _writer;
    private readonly Decoder? _utf8;
    private readonly List<byte> _pending = [];
    private char[] _chars = new char[64];
    // Used only for tokenizers that are not byte-defined: re-decode everything and emit the stable new tail.
    private readonly List<int> _ids = [];
    private int _emittedLength;

    /// <summary>Creates a decoder for one sequence.</summary>
    public StreamingDecoder(ITokenizer tokenizer, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
        if (tokenizer is IByteDecodingTokenizer byteDecoding)
        {
            _writer = byteDecoding.CreateByteWriter(skipSpecialTokens);
            // A stateful decoder keeps an incomplete trailing sequence for the next call instead of replacing it,
            // and replaces invalid bytes exactly as the one-shot Encoding.UTF8.GetString in Decode does.
            _utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
        }
    }

    /// <summary>Adds one id; returns the text that is now complete (possibly empty).</summary>
    public string Push(int id)
    {
        if (_writer is null) return PushByRedecoding(id);
        _pending.Clear();
        _writer.Append(id, _pending);
        return DecodePending(flush: false);
    }

    /// <summary>Returns whatever is still held back at the end of the sequence.</summary>
    public string Flush()
    {
        if (_writer is null)
        {
            string all = _tokenizer.Decode(_ids, _skipSpecialTokens);
            string rest = all.Length > _emittedLength ? all[_emittedLength..] : "";
            _emittedLength = all.Length;
            return rest;
        }
        _pending.Clear();
        return DecodePending(flush: true);
    }

    private string DecodePending(bool flush)
    {
        var bytes = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending);
        int needed = _utf8!.GetCharCount(bytes, flush: false) + 4;
        if (_chars.Length < needed) _chars = new char[Math.Max(needed, _chars.Length * 2)];
        int count = _utf8.GetChars(bytes, _chars, flush);
        return count == 0 ? "" : new string(_chars, 0, count);
    }

    private string PushByRedecoding(int id)
    {
        _ids.Add(id);
        string all = _tokenizer.Decode(_ids, _skipSpecialTokens);
        // A trailing U+FFFD may be a character whose remaining bytes are still to come: hold it back.
        int stable = all.Length;
        while (stable > _emittedLength && all[stable - 1] == '\uFFFD') stable--;
        if (stable <= _emittedLength) return "";
        string chunk = all[_emittedLength..stable];
        _emittedLength = stable;
        return chunk;
    }
}
