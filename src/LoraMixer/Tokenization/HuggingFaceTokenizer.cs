using System.Text;
using System.Text.Json;
using LoraMixer.Errors;

namespace LoraMixer.Tokenization;

/// <summary>
/// A Hugging Face tokenizers tokenizer.json with a BPE model: byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM)
/// or SentencePiece-style BPE with byte fallback (Llama 2, Mistral, TinyLlama). Added tokens such as
/// &lt;|im_start|&gt; are matched as whole strings before normalization and BPE, as tokenizers does.
/// </summary>
public sealed class HuggingFaceTokenizer : ITokenizer, IByteDecodingTokenizer
{
    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _idToToken;
    private readonly bool[] _special;
    private readonly Dictionary<long, (int Rank, int Id)> _merges;
    private readonly int? _unkId;
    private readonly bool _byteFallback;
    private readonly bool _fuseUnk;
    private readonly bool _ignoreMerges;
    private readonly int[] _byteIds = new int[256];
    private readonly HfNormalizer? _normalizer;
    private readonly HfPreTokenizer? _preTokenizer;
    private readonly HfDecoder _decoder;
    private readonly HfAddedTokens _rawAdded;
    private readonly HfAddedTokens _normalizedAdded;
    private readonly Dictionary<string, int> _addedByContent = new(StringComparer.Ordinal);
    private readonly int[] _bosPrefix;

    private HuggingFaceTokenizer(JsonElement root, HfJson file, TokenizerSettings settings)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw file.Malformed("no \"model\" object, so this is not a Hugging Face tokenizer.json");
        string modelType = HfJson.Type(model) ?? (model.TryGetProperty("merges", out _) ? "BPE" : "unknown");
        if (modelType != "BPE") throw file.Unsupported($"model type \"{modelType}\"");
        if (!string.IsNullOrEmpty(HfJson.OptionalString(model, "continuing_subword_prefix")) || !string.IsNullOrEmpty(HfJson.OptionalString(model, "end_of_word_suffix")))
            throw file.Unsupported("BPE with continuing_subword_prefix or end_of_word_suffix");

        if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
            throw file.Malformed("the BPE model has no \"vocab\" object");
        _vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int maxId = -1;
        foreach (var entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
                throw file.Malformed($"vocab entry \"{entry.Name}\" has no valid id");
            _vocab[entry.Name] = id;
            maxId = Math.Max(maxId, id);
        }

        var added = new List<HfAddedToken>();
        if (root.TryGetProperty("added_tokens", out var addedTokens) && addedTokens.ValueKind == JsonValueKind.Array)
        {
            foreach (var t in addedTokens.EnumerateArray())
            {
                var token = new HfAddedToken(
                    file.Int(t, "id", "an added_tokens entry"), file.String(t, "content", "an added_tokens entry"),
                    HfJson.Bool(t, "single_word", false), HfJson.Bool(t, "lstrip", false), HfJson.Bool(t, "rstrip", false),
                    HfJson.Bool(t, "normalized", !HfJson.Bool(t, "special", false)), HfJson.Bool(t, "special", false));
                if (token.Id < 0) throw file.Malformed($"added token \"{token.Content}\" has a negative id");
                added.Add(token);
                _addedByContent[token.Content] = token.Id;
                maxId = Math.Max(maxId, token.Id);
            }
        }

        _idToToken = new string?[maxId + 1];
        _special = new bool[maxId + 1];
        foreach (var (token, id) in _vocab) _idToToken[id] = token;
        // Added tokens win over the model's vocabulary for decoding, as in tokenizers' id_to_token.
        foreach (var token in added)
        {
            _idToToken[token.Id] = token.Content;
            _special[token.Id] = token.Special;
        }
        _rawAdded = new HfAddedTokens(added.Where(t => !t.Normalized));
        _normalizedAdded = new HfAddedTokens(added.Where(t => t.Normalized));

        _merges = ReadMerges(model, file);
        string? unk = HfJson.OptionalString(model, "unk_token");
        _unkId = unk is not null && _vocab.TryGetValue(unk, out int unkId) ? unkId : null;
        _byteFallback = HfJson.Bool(model, "byte_fallback", false);
        _fuseUnk = HfJson.Bool(model, "fuse_unk", false);
        _ignoreMerges = HfJson.Bool(model, "ignore_merges", false);
        for (int b = 0; b < 256; b++) _byteIds[b] = _vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;

        _normalizer = root.TryGetProperty("normalizer", out var n) ? HfNormalizer.Create(n, file) : null;
        _preTokenizer = root.TryGetProperty("pre_tokenizer", out var p) ? HfPreTokenizer.Create(p, file) : null;
        _decoder = HfDecoder.Create(root.TryGetProperty("decoder", out var d) ? d : default, file);

        var (prefix, suffix) = root.TryGetProperty("post_processor", out var post) ? TemplateSpecials(post, file) : ([], []);
        BosId = TokenizerSettings.Resolve(settings.BosToken, settings.BosTokenId, TokenToId, prefix.Count > 0 ? prefix[0] : null, VocabSize);
        EosId = TokenizerSettings.Resolve(settings.EosToken, settings.EosTokenId, TokenToId, suffix.Count > 0 ? suffix[^1] : null, VocabSize);
        // add_bos_token in tokenizer_config.json overrides the template, as transformers rebuilds it from that flag.
        _bosPrefix = settings.AddBosToken switch
        {
            false => [],
            _ when prefix.Count > 0 => [.. prefix],
            true when BosId is int bos => [bos],
            _ => [],
        };
    }

    /// <summary>Loads a tokenizer.json on its own (no tokenizer_config.json is consulted).</summary>
    public static HuggingFaceTokenizer Load(string path) => Load(path, TokenizerSettings.None);

    internal static HuggingFaceTokenizer Load(string path, TokenizerSettings settings)
    {
        var file = new HfJson(path);
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (IOException e) { throw new ModelFormatException($"Cannot read {path} ({e.Message}); check the file exists and is readable.", e); }
        JsonDocument doc;
        try { doc = JsonDocument.Parse(data); }
        catch (JsonException e) { throw file.Malformed($"not valid JSON ({e.Message})"); }
        using (doc) return new HuggingFaceTokenizer(doc.RootElement, file, settings);
    }

    /// <inheritdoc/>
    public int VocabSize => _idToToken.Length;

    /// <inheritdoc/>
    public int? BosId { get; }

    /// <inheritdoc/>
    public int? EosId { get; }

    /// <summary>Whether <see cref="Encode"/> with addBos prepends tokens (post_processor template or add_bos_token).</summary>
    public bool AddsBos => _bosPrefix.Length > 0;

    /// <summary>Whether the vocabulary is byte-level (GPT-2 alphabet) rather than SentencePiece-style.</summary>
    public bool IsByteLevel => _preTokenizer?.IsByteLevel ?? false;

    /// <summary>The id of an added token or vocabulary entry, e.g. "&lt;|im_end|&gt;"; null when absent.</summary>
    public int? TokenToId(string token) =>
        _addedByContent.TryGetValue(token, out int a) ? a : _vocab.TryGetValue(token, out int v) ? v : null;

    /// <summary>The token string of an id as stored in the file (byte-level tokens in GPT-2's alphabet); null for a gap.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <inheritdoc/>
    public IReadOnlyList<int> Encode(string text, bool addBos = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        if (addBos) ids.AddRange(_bosPrefix);
        foreach (var (token, segment, offset) in _rawAdded.Split(text))
        {
            if (token is not null) { ids.Add(token.Id); continue; }
            string normalized = _normalizer?.Normalize(segment) ?? segment;
            foreach (var (token2, segment2, offset2) in _normalizedAdded.Split(normalized))
            {
                if (token2 is not null) { ids.Add(token2.Id); continue; }
                var pieces = new List<PreToken> { new(segment2, offset == 0 && offset2 == 0) };
                if (_preTokenizer is not null) pieces = _preTokenizer.PreTokenize(pieces);
                foreach (var piece in pieces) EncodeWord(piece.Text, ids);
            }
        }
        return ids;
    }

    /// <inheritdoc/>
    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens = true) =>
        TokenByteWriter.DecodeAll(CreateByteWriter(skipSpecialTokens), ids);

    TokenByteWriter IByteDecodingTokenizer.CreateByteWriter(bool skipSpecialTokens) => CreateByteWriter(skipSpecialTokens);

    private TokenByteWriter CreateByteWriter(bool skipSpecialTokens) => _decoder.CreateWriter(id =>
    {
        if ((uint)id >= (uint)_idToToken.Length) return null;
        return skipSpecialTokens && _special[id] ? null : _idToToken[id];
    });

    /// <summary>tokenizers' BPE model on one pre-token: characters (or byte fallback / unk), then ranked merges.</summary>
    private void EncodeWord(string word, List<int> ids)
    {
        if (word.Length == 0) return;
        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole))
        {
            ids.Add(whole);
            return;
        }
        var symbols = new List<int>(word.Length);
        bool previousUnk = false;
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in word.EnumerateRunes())
        {
            if (_vocab.TryGetValue(rune.ToString(), out int id))
            {
                symbols.Add(id);
                previousUnk = false;
                continue;
            }
            if (_byteFallback)
            {
                int length = rune.EncodeToUtf8(utf8);
                bool all = true;
                for (int k = 0; k < length; k++) all &= _byteIds[utf8[k]] >= 0;
                if (all)
                {
                    for (int k = 0; k < length; k++) symbols.Add(_byteIds[utf8[k]]);
                    previousUnk = false;
                    continue;
                }
            }
            // Without an unk token tokenizers drops the character; with fuse_unk a run of unknowns is one unk.
            if (_unkId is int unk && !(_fuseUnk && previousUnk))
            {
                symbols.Add(unk);
                previousUnk = true;
            }
        }
        ids.AddRange(BpeMerger.Merge(symbols, (int left, int right, out int merged, out double priority) =>
        {
            if (_merges.TryGetValue(((long)left << 32) | (uint)right, out var m))
            {
                merged = m.Id;
                priority = m.Rank;
                return true;
            }
            merged = 0;
            priority = 0;
            return false;
        }));
    }

    private Dictionary<long, (int Rank, int Id)> ReadMerges(JsonElement model, HfJson file)
    {
        var merges = new Dictionary<long, (int, int)>();
        if (!model.TryGetProperty("merges", out var list) || list.ValueKind != JsonValueKind.Array) return merges;
        int rank = 0;
        foreach (var item in list.EnumerateArray())
        {
            string? left, right;
            if (item.ValueKind == JsonValueKind.String)
            {
                string line = item.GetString()!;
                int space = line.IndexOf(' ');
                if (space <= 0 || line.IndexOf(' ', space + 1) >= 0) throw file.Malformed($"merge \"{line}\" is not two tokens separated by one space");
                (left, right) = (line[..space], line[(space + 1)..]);
            }
            else if (item.ValueKind == JsonValueKind.Array && item.GetArrayLength() == 2)
            {
                (left, right) = (item[0].GetString(), item[1].GetString());
            }
            else
            {
                throw file.Malformed($"merge #{rank} is neither \"a b\" nor [\"a\", \"b\"]");
            }
            if (left is null || right is null || !_vocab.TryGetValue(left, out int a) || !_vocab.TryGetValue(right, out int b)
                || !_vocab.TryGetValue(left + right, out int merged))
                throw file.Malformed($"merge #{rank} (\"{left}\", \"{right}\") uses a token missing from the vocab");
            // tokenizers keeps the first rank when a pair is listed twice.
            merges.TryAdd(((long)a << 32) | (uint)b, (rank, merged));
            rank++;
        }
        return merges;
    }

    /// <summary>The special-token ids a TemplateProcessing post-processor puts before and after a single sequence.</summary>
    private static (List<int> Prefix, List<int> Suffix) TemplateSpecials(JsonElement post, HfJson file)
    {
        var prefix = new List<int>();
        var suffix = new List<int>();
        switch (HfJson.Type(post))
        {
            case "Sequence":
                if (post.TryGetProperty("processors", out var processors) && processors.ValueKind == JsonValueKind.Array)
                {
                    foreach (var p in processors.EnumerateArray())
                    {
                        var (pre, suf) = TemplateSpecials(p, file);
                        prefix.AddRange(pre);
                        suffix.AddRange(suf);
                    }
                }
                break;
            case "TemplateProcessing":
                if (!post.TryGetProperty("single", out var single) || single.ValueKind != JsonValueKind.Array) break;
                bool seenSequence = false;
                foreach (var item in single.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.Object) continue;
                    if (item.TryGetProperty("Sequence", out _)) { seenSequence = true; continue; }
                    if (!item.TryGetProperty("SpecialToken", out var special)) continue;
                    string name = file.String(special, "id", "a TemplateProcessing special token");
                    if (!post.TryGetProperty("special_tokens", out var table) || !table.TryGetProperty(name, out var entry))
                        throw file.Malformed($"post_processor uses special token \"{name}\" without listing it in special_tokens");
                    foreach (var id in file.Array(entry, "ids", $"special token \"{name}\"").EnumerateArray())
                        (seenSequence ? suffix : prefix).Add(id.GetInt32());
                }
                break;
        }
        return (prefix, suffix);
    }
}
