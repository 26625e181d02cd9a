using System.Buffers.Binary;
using System.Text;
using LoraMixer.Errors;

namespace LoraMixer.Tokenization;

/// <summary>
/// The tokenizer.bin format of Karpathy's llama2.c: int32 max_token_length, then per token a float32 score,
/// an int32 byte length and the bytes (SentencePiece's "▁" already turned into a space). Encodes and decodes
/// exactly as llama2.c's run.c <c>encode()</c> and <c>decode()</c>, which differ from SentencePiece in places
/// (no normalization: a literal "▁" in the text falls back to bytes).
/// </summary>
public sealed class Llama2cTokenizer : ITokenizer, IByteDecodingTokenizer
{
    // run.c hard-codes these: ids 0..2 are <unk>, <s>, </s>, and byte tokens start at 3.
    private const int RunCBosId = 1;
    private const int RunCEosId = 2;
    private const int ByteTokenOffset = 3;
    // run.c starts its best-merge search at this score, so pairs scoring at or below it never merge.
    private const float MergeScoreFloor = -1e10f;

    private readonly byte[][] _vocab;
    private readonly float[] _scores;
    // Keys are the raw bytes as Latin-1 strings: lossless for any byte content and cheap to concatenate.
    private readonly Dictionary<string, int> _lookup = new(StringComparer.Ordinal);
    private readonly string[] _keys;
    private readonly int[] _bosPrefix;

    private Llama2cTokenizer(byte[][] vocab, float[] scores, int maxTokenLength, TokenizerSettings settings)
    {
        _vocab = vocab;
        _scores = scores;
        MaxTokenLength = maxTokenLength;
        _keys = new string[vocab.Length];
        for (int i = 0; i < vocab.Length; i++)
        {
            _keys[i] = Encoding.Latin1.GetString(vocab[i]);
            // run.c finds tokens by binary search over the sorted vocabulary; with no duplicates any table agrees.
            _lookup.TryAdd(_keys[i], i);
        }
        int? Lookup(string token) => _lookup.TryGetValue(Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(token)), out int id) ? id : null;
        BosId = TokenizerSettings.Resolve(settings.BosToken, settings.BosTokenId, Lookup, vocab.Length > RunCBosId ? RunCBosId : null, vocab.Length);
        EosId = TokenizerSettings.Resolve(settings.EosToken, settings.EosTokenId, Lookup, vocab.Length > RunCEosId ? RunCEosId : null, vocab.Length);
        _bosPrefix = (settings.AddBosToken ?? true) && BosId is int bos ? [bos] : [];
    }

    /// <summary>Loads a llama2.c tokenizer.bin (any file name, e.g. tok512.bin).</summary>
    public static Llama2cTokenizer Load(string path) => Load(path, TokenizerSettings.None);

    internal static Llama2cTokenizer Load(string path, TokenizerSettings settings)
    {
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (IOException e) { throw new ModelFormatException($"Cannot read {path} ({e.Message}); check the file exists and is readable.", e); }

        string fix = "a llama2.c tokenizer.bin is int32 max_token_length then (float32 score, int32 length, bytes) per token; re-export it with llama2.c's tokenizer.py";
        if (data.Length < 4) throw new ModelFormatException($"{path} is too short for a llama2.c tokenizer: {fix}.");
        int maxTokenLength = BinaryPrimitives.ReadInt32LittleEndian(data);
        var vocab = new List<byte[]>();
        var scores = new List<float>();
        int pos = 4;
        while (pos < data.Length)
        {
            if (data.Length - pos < 8) throw new ModelFormatException($"{path} ends inside token {vocab.Count}'s header: {fix}.");
            float score = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(pos));
            int length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(pos + 4));
            pos += 8;
            if (length < 0 || length > data.Length - pos)
                throw new ModelFormatException($"{path}: token {vocab.Count} claims {length} bytes but {data.Length - pos} remain: {fix}.");
            vocab.Add(data.AsSpan(pos, length).ToArray());
            scores.Add(score);
            pos += length;
        }
        if (vocab.Count < ByteTokenOffset + 256)
            throw new ModelFormatException($"{path} holds {vocab.Count} tokens, fewer than the 259 (<unk>, <s>, </s>, 256 byte tokens) llama2.c needs: {fix}.");
        return new Llama2cTokenizer([.. vocab], [.. scores], maxTokenLength, settings);
    }

    /// <inheritdoc/>
    public int VocabSize => _vocab.Length;

    /// <inheritdoc/>
    public int? BosId { get; }

    /// <inheritdoc/>
    public int? EosId { get; }

    /// <summary>The max_token_length header field (longest token in bytes).</summary>
    public int MaxTokenLength { get; }

    /// <summary>Whether <see cref="Encode"/> with addBos prepends BOS (as run.c does, unless add_bos_token is false).</summary>
    public bool AddsBos => _bosPrefix.Length > 0;

    /// <inheritdoc/>
    public IReadOnlyList<int> Encode(string text, bool addBos = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        if (addBos) ids.AddRange(_bosPrefix);
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var tokens = new List<int>(bytes.Length + 1);
        // run.c's dummy prefix: a " " token in front of any non-empty text (skipped if the vocabulary lacks it,
        // where run.c would emit an invalid id).
        if (bytes.Length > 0 && _lookup.TryGetValue(" ", out int space)) tokens.Add(space);

        int start = 0;
        while (start < bytes.Length)
        {
            // A code point is a lead byte plus its continuation bytes, at most 4 bytes in all, as in run.c.
            int length = 1;
            while (start + length < bytes.Length && (bytes[start + length] & 0xC0) == 0x80 && length < 4) length++;
            string key = Encoding.Latin1.GetString(bytes, start, length);
            if (_lookup.TryGetValue(key, out int id)) tokens.Add(id);
            else for (int k = 0; k < length; k++) tokens.Add(bytes[start + k] + ByteTokenOffset);
            start += length;
        }

        ids.AddRange(BpeMerger.Merge(tokens, (int left, int right, out int merged, out double priority) =>
        {
            priority = 0;
            if (_lookup.TryGetValue(string.Concat(_keys[left], _keys[right]), out merged) && _scores[merged] > MergeScoreFloor)
            {
                priority = -(double)_scores[merged];
                return true;
            }
            return false;
        }));
        return ids;
    }

    /// <inheritdoc/>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true) =>
        TokenByteWriter.DecodeAll(new Writer(this, skipSpecialTokens), ids);

    TokenByteWriter IByteDecodingTokenizer.CreateByteWriter(bool skipSpecialTokens) => new Writer(this, skipSpecialTokens);

    /// <summary>run.c's decode(prev_token, token): a leading space is dropped right after BOS, &lt;0xXX&gt; is a raw byte.</summary>
    private sealed class Writer(Llama2cTokenizer owner, bool skipSpecialTokens) : TokenByteWriter
    {
        private int _previous = -1;

        public override void Append(int id, List<byte> output)
        {
            int previous = _previous;
            _previous = id;
            if ((uint)id >= (uint)owner._vocab.Length) return;
            if (skipSpecialTokens && (id == RunCBosId || id == RunCEosId)) return;
            ReadOnlySpan<byte> piece = owner._vocab[id];
            if (previous == RunCBosId && piece.Length > 0 && piece[0] == (byte)' ') piece = piece[1..];
            if (TryParseByteToken(piece, out byte value)) output.Add(value);
            else output.AddRange(piece);
        }

        // sscanf(piece, "<0x%02hhX>", &b) == 1: "<0x" then one or two hex digits.
        private static bool TryParseByteToken(ReadOnlySpan<byte> piece, out byte value)
        {
            value = 0;
            if (piece.Length < 4 || piece[0] != '<' || piece[1] != '0' || piece[2] != 'x') return false;
            int digits = 0, result = 0;
            for (int i = 3; i < piece.Length && digits < 2; i++)
            {
                int d = HexValue(piece[i]);
                if (d < 0) break;
                result = result * 16 + d;
                digits++;
            }
            value = (byte)result;
            return digits > 0;
        }

        private static int HexValue(byte c) => c switch
        {
            >= (byte)'0' and <= (byte)'9' => c - '0',
            >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
            >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
            _ => -1,
        };
    }
}
