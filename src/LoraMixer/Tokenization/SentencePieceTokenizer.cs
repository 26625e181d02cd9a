using System.Text;
using LoraMixer.Errors;

namespace LoraMixer.Tokenization;

/// <summary>
/// SentencePiece BPE from a tokenizer.model (Llama 2, Mistral, TinyLlama), giving exactly the ids of the
/// reference SentencePiece library: identity normalization with the dummy prefix and "▁" for spaces,
/// score-ordered merges, and byte fallback (&lt;0xXX&gt; pieces) for characters outside the vocabulary.
/// </summary>
/// <remarks>
/// Implemented here rather than with Microsoft.ML.Tokenizers' LlamaTokenizer because that one picks a
/// different merge order on some inputs (long runs of one letter), so its ids differ from SentencePiece's.
/// </remarks>
public sealed class SentencePieceTokenizer : ITokenizer, IByteDecodingTokenizer
{
    private const char SpaceSymbol = '\u2581';

    private readonly string[] _pieces;
    private readonly float[] _scores;
    private readonly SentencePieceType[] _types;
    private readonly Dictionary<string, int> _reserved = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _mergeable = new(StringComparer.Ordinal);
    private readonly string[] _userDefined;
    private readonly int[] _byteIds = new int[256];
    private readonly int _unkId;
    private readonly bool _byteFallback;
    private readonly bool _addDummyPrefix;
    private readonly bool _removeExtraWhitespaces;
    private readonly bool _escapeWhitespaces;
    private readonly byte[] _unkSurface;
    private readonly int[] _bosPrefix;

    private SentencePieceTokenizer(SentencePieceModelProto model, string path, TokenizerSettings settings)
    {
        if (model.ModelType != 2)
            throw new ModelFormatException($"{path} is a SentencePiece {(model.ModelType == 1 ? "unigram" : "non-BPE")} model; only BPE models (Llama, Mistral) are supported: use the model's tokenizer.json instead.");
        if (model.PrecompiledCharsMapLength > 0 && model.NormalizerName != "identity")
            throw new ModelFormatException($"{path} uses the '{model.NormalizerName}' normalizer, which is not supported (only 'identity', as in Llama and Mistral): use the model's tokenizer.json instead.");
        if (model.TreatWhitespaceAsSuffix)
            throw new ModelFormatException($"{path} sets treat_whitespace_as_suffix, which is not supported: use the model's tokenizer.json instead.");

        int n = model.Pieces.Count;
        _pieces = new string[n];
        _scores = new float[n];
        _types = new SentencePieceType[n];
        var userDefined = new List<string>();
        Array.Fill(_byteIds, -1);
        _unkId = -1;
        for (int i = 0; i < n; i++)
        {
            var (piece, score, type) = model.Pieces[i];
            _pieces[i] = piece;
            _scores[i] = score;
            _types[i] = type;
            // Same split as SentencePiece's ModelInterface: control, unknown and byte pieces are never
            // produced by merging, only normal, user-defined and unused ones are.
            var table = type is SentencePieceType.Control or SentencePieceType.Unknown or SentencePieceType.Byte ? _reserved : _mergeable;
            table.TryAdd(piece, i);
            if (type == SentencePieceType.Unknown && _unkId < 0) _unkId = i;
            if (type == SentencePieceType.UserDefined && piece.Length > 0) userDefined.Add(piece);
            if (type == SentencePieceType.Byte && TryParseBytePiece(piece, out byte b)) _byteIds[b] = i;
        }
        if (_unkId < 0)
            throw new ModelFormatException($"{path} has no unknown piece (type UNKNOWN); restore tokenizer.model from the model's repository.");
        _userDefined = [.. userDefined.OrderByDescending(p => p.Length)];
        _byteFallback = model.ByteFallback;
        _addDummyPrefix = model.AddDummyPrefix;
        _removeExtraWhitespaces = model.RemoveExtraWhitespaces;
        _escapeWhitespaces = model.EscapeWhitespaces;
        _unkSurface = Encoding.UTF8.GetBytes(model.UnkSurface);

        int? Lookup(string token) => _reserved.TryGetValue(token, out int r) ? r : _mergeable.TryGetValue(token, out int m) ? m : null;
        int? ControlId(string piece) => _reserved.TryGetValue(piece, out int id) && _types[id] == SentencePieceType.Control ? id : null;
        BosId = TokenizerSettings.Resolve(settings.BosToken, settings.BosTokenId, Lookup, ControlId(model.BosPiece), n);
        EosId = TokenizerSettings.Resolve(settings.EosToken, settings.EosTokenId, Lookup, ControlId(model.EosPiece), n);
        // Llama's SentencePiece tokenizers prepend BOS unless the model's config says otherwise.
        _bosPrefix = (settings.AddBosToken ?? true) && BosId is int bos ? [bos] : [];
    }

    /// <summary>Loads a tokenizer.model file on its own (no tokenizer_config.json is consulted).</summary>
    public static SentencePieceTokenizer Load(string path) => Load(path, TokenizerSettings.None);

    internal static SentencePieceTokenizer Load(string path, TokenizerSettings settings)
    {
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (IOException e) { throw new ModelFormatException($"Cannot read {path} ({e.Message}); check the file exists and is readable.", e); }
        return new SentencePieceTokenizer(SentencePieceModelProto.Parse(data, path), path, settings);
    }

    /// <inheritdoc/>
    public int VocabSize => _pieces.Length;

    /// <inheritdoc/>
    public int? BosId { get; }

    /// <inheritdoc/>
    public int? EosId { get; }

    /// <summary>Whether <see cref="Encode"/> with addBos prepends BOS (tokenizer_config.json's add_bos_token, default true).</summary>
    public bool AddsBos => _bosPrefix.Length > 0;

    /// <summary>The piece text of an id, e.g. "▁Hello" or "&lt;0x0A&gt;".</summary>
    public string IdToPiece(int id) => _pieces[CheckId(id)];

    /// <inheritdoc/>
    public IReadOnlyList<int> Encode(string text, bool addBos = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        if (addBos) ids.AddRange(_bosPrefix);
        string normalized = Normalize(text);
        if (normalized.Length == 0) return ids;

        var revMerge = new Dictionary<string, (string Left, string Right)>(StringComparer.Ordinal);
        var merged = BpeMerger.Merge(SplitSymbols(normalized), (Symbol left, Symbol right, out Symbol result, out double priority) =>
        {
            result = default;
            priority = 0;
            if (left.Frozen || right.Frozen) return false;
            string joined = string.Concat(left.Text, right.Text);
            if (!_mergeable.TryGetValue(joined, out int id)) return false;
            // Unused pieces still take part in merging but are split back afterwards (SentencePiece's resegment).
            if (_types[id] == SentencePieceType.Unused) revMerge[joined] = (left.Text, right.Text);
            result = new Symbol(joined, false);
            priority = -(double)_scores[id];
            return true;
        });

        foreach (var symbol in merged) Resegment(symbol.Text, revMerge, ids);
        return ids;
    }

    /// <inheritdoc/>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true) =>
        TokenByteWriter.DecodeAll(CreateByteWriter(skipSpecialTokens), ids);

    TokenByteWriter IByteDecodingTokenizer.CreateByteWriter(bool skipSpecialTokens) => CreateByteWriter(skipSpecialTokens);

    private Writer CreateByteWriter(bool skipSpecialTokens) => new(this, skipSpecialTokens);

    /// <summary>SentencePiece's Normalizer with an identity rule set: whitespace options only.</summary>
    private string Normalize(string text)
    {
        int i = 0;
        if (_removeExtraWhitespaces)
            while (i < text.Length && text[i] == ' ') i++;
        if (i == text.Length) return "";
        char space = _escapeWhitespaces ? SpaceSymbol : ' ';
        var sb = new StringBuilder(text.Length - i + 1);
        if (_addDummyPrefix) sb.Append(space);
        bool previousSpace = _removeExtraWhitespaces;
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (c == ' ')
            {
                if (previousSpace) continue;
                sb.Append(space);
                previousSpace = _removeExtraWhitespaces;
            }
            else
            {
                sb.Append(c);
                previousSpace = false;
            }
        }
        if (_removeExtraWhitespaces)
            while (sb.Length > 0 && sb[^1] == space) sb.Length--;
        return sb.ToString();
    }

    private readonly record struct Symbol(string Text, bool Frozen);

    // One symbol per Unicode character, except user-defined pieces, which are matched whole and never merged.
    private List<Symbol> SplitSymbols(string normalized)
    {
        var symbols = new List<Symbol>(normalized.Length);
        int i = 0;
        while (i < normalized.Length)
        {
            string? user = null;
            foreach (string piece in _userDefined)
            {
                if (string.CompareOrdinal(normalized, i, piece, 0, piece.Length) == 0) { user = piece; break; }
            }
            if (user is not null)
            {
                symbols.Add(new Symbol(user, true));
                i += user.Length;
                continue;
            }
            int length = char.IsHighSurrogate(normalized[i]) && i + 1 < normalized.Length && char.IsLowSurrogate(normalized[i + 1]) ? 2 : 1;
            symbols.Add(new Symbol(normalized.Substring(i, length), false));
            i += length;
        }
        return symbols;
    }

    private void Resegment(string piece, Dictionary<string, (string Left, string Right)> revMerge, List<int> ids)
    {
        int id = _reserved.TryGetValue(piece, out int r) ? r : _mergeable.TryGetValue(piece, out int m) ? m : _unkId;
        if (_types[id] == SentencePieceType.Unused && revMerge.TryGetValue(piece, out var parts))
        {
            Resegment(parts.Left, revMerge, ids);
            Resegment(parts.Right, revMerge, ids);
            return;
        }
        if (id == _unkId && _byteFallback)
        {
            foreach (byte b in Encoding.UTF8.GetBytes(piece)) ids.Add(_byteIds[b] >= 0 ? _byteIds[b] : _unkId);
            return;
        }
        ids.Add(id);
    }

    private int CheckId(int id) =>
        (uint)id < (uint)_pieces.Length ? id : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id outside the vocabulary of {_pieces.Length}.");

    internal static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out value);
    }

    /// <summary>SentencePiece's DecodeSentencePiece, including its "drop the first piece's leading ▁" rule.</summary>
    private sealed class Writer(SentencePieceTokenizer owner, bool skipSpecialTokens) : TokenByteWriter
    {
        // True until the first visible piece: only that piece loses the ▁ that the dummy prefix added.
        private bool _atBeginning = true;

        public override void Append(int id, List<byte> output)
        {
            if ((uint)id >= (uint)owner._pieces.Length) return;
            string piece = owner._pieces[id];
            switch (owner._types[id])
            {
                case SentencePieceType.Control:
                    // Control tokens are invisible to SentencePiece and do not count as the first piece.
                    if (!skipSpecialTokens) AppendUtf8(piece, output);
                    return;
                case SentencePieceType.Unknown:
                    output.AddRange(owner._unkSurface);
                    break;
                case SentencePieceType.Byte when TryParseBytePiece(piece, out byte b):
                    output.Add(b);
                    break;
                default:
                    if (_atBeginning && (owner._addDummyPrefix || owner._removeExtraWhitespaces)
                        && piece.Length > 0 && piece[0] == SpaceSymbol && !StartsWithUserDefined(piece))
                        piece = piece[1..];
                    AppendUtf8(piece.Replace(SpaceSymbol, ' '), output);
                    break;
            }
            _atBeginning = false;
        }

        private bool StartsWithUserDefined(string piece)
        {
            foreach (string user in owner._userDefined)
                if (piece.StartsWith(user, StringComparison.Ordinal)) return true;
            return false;
        }

        private static void AppendUtf8(string text, List<byte> output) => output.AddRange(Encoding.UTF8.GetBytes(text));
    }
}
