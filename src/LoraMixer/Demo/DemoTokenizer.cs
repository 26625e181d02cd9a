using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.IO;

namespace LoraMixer.Demo;

/// <summary>
/// The demo model's character-level vocabulary, written as a Hugging Face tokenizer.json that
/// <see cref="Tokenization.TokenizerLoader"/> (and Hugging Face tokenizers) load: a BPE model with no merges, so
/// every character is one token. Ids: &lt;unk&gt; 0, &lt;s&gt; 1 (BOS, prepended by the post-processor),
/// &lt;/s&gt; 2 (EOS), &lt;pad&gt; 3, then '\n', ' ' and printable ASCII '!'..'~'.
/// </summary>
public static class DemoTokenizer
{
    /// <summary>Id of &lt;unk&gt;, which any character outside the vocabulary becomes.</summary>
    public const int UnkId = 0;

    /// <summary>Id of &lt;s&gt; (beginning of sequence).</summary>
    public const int BosId = 1;

    /// <summary>Id of &lt;/s&gt; (end of sequence).</summary>
    public const int EosId = 2;

    /// <summary>Id of &lt;pad&gt;.</summary>
    public const int PadId = 3;

    /// <summary>Number of tokens: 4 specials, newline, space and the 94 printable ASCII characters.</summary>
    public const int VocabSize = 100;

    private static readonly string[] Specials = ["<unk>", "<s>", "</s>", "<pad>"];

    /// <summary>Token strings in id order.</summary>
    public static IReadOnlyList<string> Vocabulary { get; } = BuildVocabulary();

    /// <summary>Writes tokenizer.json and tokenizer_config.json into <paramref name="modelDir"/> (created if needed).</summary>
    public static void WriteFiles(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        Directory.CreateDirectory(modelDir);
        var options = new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        WriteJson(Path.Combine(modelDir, "tokenizer.json"), TokenizerJson(), options);
        WriteJson(Path.Combine(modelDir, "tokenizer_config.json"), TokenizerConfigJson(), options);
    }

    private static string[] BuildVocabulary()
    {
        var vocab = new List<string>(Specials) { "\n", " " };
        for (char c = '!'; c <= '~'; c++) vocab.Add(c.ToString());
        if (vocab.Count != VocabSize) throw new InvalidOperationException($"Demo vocabulary has {vocab.Count} tokens, expected {VocabSize}.");
        return [.. vocab];
    }

    private static JsonObject TokenizerJson()
    {
        var vocab = new JsonObject();
        for (int id = 0; id < Vocabulary.Count; id++) vocab[Vocabulary[id]] = id;
        var added = new JsonArray();
        for (int id = 0; id < Specials.Length; id++)
        {
            added.Add(new JsonObject
            {
                ["id"] = id,
                ["content"] = Specials[id],
                ["single_word"] = false,
                ["lstrip"] = false,
                ["rstrip"] = false,
                ["normalized"] = false,
                ["special"] = true,
            });
        }
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = null,
            // BOS before every single sequence, as Llama tokenizers do.
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["pair"] = new JsonArray(
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } },
                    new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 1 } },
                    new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
                ["special_tokens"] = new JsonObject
                {
                    ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(BosId), ["tokens"] = new JsonArray("<s>") },
                },
            },
            // Fuse concatenates the characters (no decoder at all would join them with spaces).
            ["decoder"] = new JsonObject { ["type"] = "Fuse" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = "<unk>",
                ["continuing_subword_prefix"] = null,
                ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["ignore_merges"] = false,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(),
            },
        };
    }

    private static JsonObject TokenizerConfigJson() => new()
    {
        ["tokenizer_class"] = "PreTrainedTokenizerFast",
        ["bos_token"] = "<s>",
        ["eos_token"] = "</s>",
        ["unk_token"] = "<unk>",
        ["pad_token"] = "<pad>",
        ["add_bos_token"] = true,
        ["add_eos_token"] = false,
        ["clean_up_tokenization_spaces"] = false,
    };

    private static void WriteJson(string path, JsonObject json, JsonSerializerOptions options)
    {
        byte[] bytes = JsonSerializer.SerializeToUtf8Bytes(json, options);
        AtomicFile.Write(path, stream => stream.Write(bytes));
    }
}
