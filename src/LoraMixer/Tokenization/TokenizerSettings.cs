using System.Text.Json;
using LoraMixer.Errors;

namespace LoraMixer.Tokenization;

/// <summary>
/// What a model folder's tokenizer_config.json and config.json say about special tokens. Every field is
/// optional: a tokenizer falls back to what its own file says.
/// </summary>
internal sealed record TokenizerSettings(
    string? BosToken = null,
    string? EosToken = null,
    int? BosTokenId = null,
    int? EosTokenId = null,
    bool? AddBosToken = null)
{
    /// <summary>No configuration: the tokenizer file alone decides.</summary>
    public static TokenizerSettings None { get; } = new();

    /// <summary>Reads tokenizer_config.json and config.json from <paramref name="folder"/> where present.</summary>
    public static TokenizerSettings FromFolder(string folder)
    {
        string? bosToken = null, eosToken = null;
        int? bosId = null, eosId = null;
        bool? addBos = null;

        string tokenizerConfig = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(tokenizerConfig))
        {
            using var doc = ParseJson(tokenizerConfig);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException($"{tokenizerConfig}: expected a JSON object; restore the file from the model's repository.");
            bosToken = TokenContent(root, "bos_token");
            eosToken = TokenContent(root, "eos_token");
            if (root.TryGetProperty("add_bos_token", out var add) && add.ValueKind is JsonValueKind.True or JsonValueKind.False)
                addBos = add.GetBoolean();
        }

        string modelConfig = Path.Combine(folder, "config.json");
        if (File.Exists(modelConfig))
        {
            using var doc = ParseJson(modelConfig);
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                bosId = FirstId(root, "bos_token_id");
                eosId = FirstId(root, "eos_token_id");
            }
        }

        return new TokenizerSettings(bosToken, eosToken, bosId, eosId, addBos);
    }

    private static JsonDocument ParseJson(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"{path} is not valid JSON ({e.Message}); restore the file from the model's repository.", e);
        }
    }

    // Hugging Face writes special tokens either as a plain string or as an AddedToken object.
    private static string? TokenContent(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value)) return null;
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => null,
        };
    }

    // Llama 3.1's config lists several EOS ids; the first is the end-of-text token.
    private static int? FirstId(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value)) return null;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int id)) return id;
        if (value.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in value.EnumerateArray())
                if (item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out int first)) return first;
        }
        return null;
    }

    /// <summary>
    /// Resolves a special-token id: the token named in tokenizer_config.json, else config.json's id, else the
    /// tokenizer's own default.
    /// </summary>
    public static int? Resolve(string? token, int? configId, Func<string, int?> lookup, int? fallback, int vocabSize)
    {
        if (token is not null && lookup(token) is int fromToken) return fromToken;
        if (configId is int id && id >= 0 && id < vocabSize) return id;
        return fallback;
    }
}
