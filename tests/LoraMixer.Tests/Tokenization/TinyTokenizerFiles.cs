using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoraMixer.Tests.Tokenization;

/// <summary>
/// Small tokenizer.json files written by the tests themselves, with vocabularies small enough that the
/// expected ids can be worked out by hand (see the comments at each test).
/// </summary>
public static class TinyTokenizerFiles
{
    public const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>GPT-2's bytes_to_unicode, written out independently of the library's copy.</summary>
    public static char ByteChar(int b)
    {
        bool direct = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (direct) return (char)b;
        int n = 0;
        for (int k = 0; k < b; k++)
        {
            bool d = (k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF);
            if (!d) n++;
        }
        return (char)(256 + n);
    }

    /// <summary>
    /// Byte-level BPE: ids 0..255 are the 256 byte characters (id = byte value), then merged tokens from 256.
    /// Added tokens &lt;|endoftext|&gt; and &lt;|im_start|&gt; follow the merges.
    /// </summary>
    public static JsonObject ByteLevel(IEnumerable<(string Left, string Right)> merges, JsonNode preTokenizer, bool mergesAsArrays = false, bool ignoreMerges = false)
    {
        var vocab = new JsonObject();
        for (int b = 0; b < 256; b++) vocab[ByteChar(b).ToString()] = b;
        var mergeList = new JsonArray();
        int next = 256;
        foreach (var (left, right) in merges)
        {
            if (!vocab.ContainsKey(left + right)) vocab[left + right] = next++;
            mergeList.Add(mergesAsArrays ? new JsonArray(left, right) : JsonValue.Create(left + " " + right));
        }
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                AddedToken(next, "<|endoftext|>", special: true),
                AddedToken(next + 1, "<|im_start|>", special: true)),
            ["normalizer"] = null,
            ["pre_tokenizer"] = preTokenizer,
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = ignoreMerges,
                ["vocab"] = vocab,
                ["merges"] = mergeList,
            },
        };
    }

    /// <summary>GPT-2 style: ByteLevel pre-tokenizer with its built-in regex, merges spelling "hello world".</summary>
    public static JsonObject Gpt2Style(bool mergesAsArrays = false) => ByteLevel(
        [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("l", "d"), ("Ġwor", "ld"), ("Ã", "©")],
        new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
        mergesAsArrays);

    /// <summary>Llama-3 style: Split(Llama 3 regex) then ByteLevel without regex, ignore_merges.</summary>
    public static JsonObject Llama3Style(IEnumerable<(string, string)> merges) => ByteLevel(
        merges,
        new JsonObject
        {
            ["type"] = "Sequence",
            ["pretokenizers"] = new JsonArray(
                new JsonObject
                {
                    ["type"] = "Split",
                    ["pattern"] = new JsonObject { ["Regex"] = Llama3Pattern },
                    ["behavior"] = "Isolated",
                    ["invert"] = false,
                },
                new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
        },
        mergesAsArrays: true,
        ignoreMerges: true);

    /// <summary>
    /// SentencePiece-style BPE as in Llama 2's tokenizer.json: ids 0..2 &lt;unk&gt; &lt;s&gt; &lt;/s&gt;, 3..258 the
    /// &lt;0xXX&gt; byte tokens, then 259 ▁, 260 h, 261 i, 262 t, 263 e, 264 r, 265 ▁h, 266 ▁hi, 267 ▁t, 268 he,
    /// 269 ▁the, 270 re, 271 ▁there.
    /// </summary>
    public static JsonObject SentencePieceStyle()
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++) vocab[$"<0x{b:X2}>"] = 3 + b;
        string[] pieces = ["▁", "h", "i", "t", "e", "r", "▁h", "▁hi", "▁t", "he", "▁the", "re", "▁there"];
        for (int i = 0; i < pieces.Length; i++) vocab[pieces[i]] = 259 + i;
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(
                AddedToken(0, "<unk>", special: true),
                AddedToken(1, "<s>", special: true),
                AddedToken(2, "</s>", special: true)),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
            },
            ["pre_tokenizer"] = null,
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["pair"] = new JsonArray(),
                ["special_tokens"] = new JsonObject
                {
                    ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray("<s>") },
                },
            },
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "▁" }, ["content"] = " " },
                    new JsonObject { ["type"] = "ByteFallback" },
                    new JsonObject { ["type"] = "Fuse" },
                    new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = "<unk>",
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = true,
                ["byte_fallback"] = true,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray("▁ h", "▁h i", "▁ t", "h e", "▁t he", "r e", "▁the re"),
            },
        };
    }

    public static JsonObject AddedToken(int id, string content, bool special) => new()
    {
        ["id"] = id,
        ["content"] = content,
        ["single_word"] = false,
        ["lstrip"] = false,
        ["rstrip"] = false,
        ["normalized"] = false,
        ["special"] = special,
    };

    /// <summary>Writes <paramref name="json"/> as tokenizer.json in a fresh folder and returns the folder.</summary>
    public static string WriteFolder(JsonObject json, string? tokenizerConfig = null, string? config = null)
    {
        string dir = TestPaths.NewTempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        if (tokenizerConfig is not null) File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), tokenizerConfig);
        if (config is not null) File.WriteAllText(Path.Combine(dir, "config.json"), config);
        return dir;
    }
}
