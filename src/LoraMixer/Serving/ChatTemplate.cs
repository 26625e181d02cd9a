using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using LoraMixer.Errors;
using LoraMixer.Tokenization;

namespace LoraMixer.Serving;

/// <summary>
/// A built-in chat template: how a conversation becomes the token ids a chat model was trained on, ending with
/// the assistant's turn opened. The common families are built in (ChatML for Qwen2/SmolLM, Llama 3, Llama 2 and
/// Mistral <c>[INST]</c>); <see cref="FromModelFolder"/> recognises them in <c>tokenizer_config.json</c>'s
/// <c>chat_template</c> by their markers, since Jinja templates are not executed.
/// </summary>
public sealed partial class ChatTemplate
{
    private enum Family { ChatMl, Llama3, Llama2, Mistral }

    private abstract record Piece;
    private sealed record Text(string Value) : Piece;
    private sealed record Bos : Piece;
    private sealed record Eos : Piece;

    private readonly Family _family;

    private ChatTemplate(Family family, string name, string? defaultSystemPrompt)
    {
        _family = family;
        Name = name;
        DefaultSystemPrompt = defaultSystemPrompt;
    }

    /// <summary>The names <c>--chat-template</c> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["chatml", "llama3", "llama2", "mistral"];

    /// <summary>What a model without a chat template gets: ChatML (as transformers' former default).</summary>
    public const string DefaultName = "chatml";

    /// <summary>The template's name (one of <see cref="Names"/>).</summary>
    public string Name { get; }

    /// <summary>The system message the model's own template inserts when a conversation has none (ChatML models such as Qwen2).</summary>
    public string? DefaultSystemPrompt { get; }

    /// <summary>Token strings that end an assistant turn besides the tokenizer's EOS (<c>&lt;|im_end|&gt;</c>, <c>&lt;|eot_id|&gt;</c>).</summary>
    public IReadOnlyList<string> EndOfTurnTokens => _family switch
    {
        Family.ChatMl => ["<|im_end|>"],
        Family.Llama3 => ["<|eot_id|>"],
        _ => [],
    };

    /// <summary>The template called <paramref name="name"/> (see <see cref="Names"/>).</summary>
    /// <exception cref="ArgumentException">Unknown name.</exception>
    public static ChatTemplate Named(string name, string? defaultSystemPrompt = null) => name.Trim().ToLowerInvariant() switch
    {
        "chatml" => new ChatTemplate(Family.ChatMl, "chatml", defaultSystemPrompt),
        "llama3" => new ChatTemplate(Family.Llama3, "llama3", null),
        "llama2" => new ChatTemplate(Family.Llama2, "llama2", null),
        "mistral" => new ChatTemplate(Family.Mistral, "mistral", null),
        _ => throw new ArgumentException($"--chat-template {name}: unknown template; use one of {string.Join(", ", Names)}"),
    };

    /// <summary>
    /// The template of the model in <paramref name="modelDir"/>: <paramref name="overrideName"/> when given, else the one
    /// recognised in <c>tokenizer_config.json</c>'s <c>chat_template</c> (or <c>chat_template.jinja</c>), else ChatML for a
    /// model that has none (reported through <paramref name="log"/>).
    /// </summary>
    /// <exception cref="ModelFormatException">The model's template is none of the built-in ones.</exception>
    public static ChatTemplate FromModelFolder(string modelDir, string? overrideName = null, Action<string>? log = null)
    {
        string? source = ReadTemplate(modelDir, out string where);
        if (overrideName is not null) return Named(overrideName, source is null ? null : DefaultSystem(source));
        if (source is null)
        {
            log?.Invoke($"{modelDir} has no chat template; chat requests use {DefaultName} (choose another with --chat-template NAME)");
            return Named(DefaultName);
        }
        if (Recognise(source) is string name) return Named(name, DefaultSystem(source));
        throw new ModelFormatException(
            $"{where}: the chat_template is none of the built-in templates ({string.Join(", ", Names)}); pick the one the model was trained with by --chat-template NAME");
    }

    /// <summary>The built-in template whose markers <paramref name="jinja"/> contains, or null.</summary>
    public static string? Recognise(string jinja)
    {
        if (jinja.Contains("<|im_start|>", StringComparison.Ordinal)) return "chatml";
        if (jinja.Contains("<|start_header_id|>", StringComparison.Ordinal)) return "llama3";
        if (jinja.Contains("[INST]", StringComparison.Ordinal))
            return jinja.Contains("<<SYS>>", StringComparison.Ordinal) ? "llama2" : "mistral";
        return null;
    }

    /// <summary>
    /// The token ids of <paramref name="turns"/> followed by the opening of the assistant's reply, as the model's
    /// <c>apply_chat_template(..., add_generation_prompt=True)</c> writes them.
    /// </summary>
    /// <exception cref="ArgumentException">No messages, or a role other than system, developer, user or assistant.</exception>
    public IReadOnlyList<int> Encode(IReadOnlyList<ChatTurn> turns, ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(turns);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (turns.Count == 0) throw new ArgumentException("a conversation needs at least one message");
        var normalised = turns.Select(Normalise).ToList();
        var pieces = _family switch
        {
            Family.ChatMl => ChatMl(normalised),
            Family.Llama3 => Llama3(normalised),
            _ => Inst(normalised, _family == Family.Llama2),
        };
        var ids = new List<int>();
        foreach (var piece in pieces)
        {
            switch (piece)
            {
                case Text t when t.Value.Length > 0: ids.AddRange(tokenizer.Encode(t.Value, addBos: false)); break;
                case Bos when tokenizer.BosId is int bos: ids.Add(bos); break;
                case Eos when tokenizer.EosId is int eos: ids.Add(eos); break;
            }
        }
        return ids;
    }

    /// <summary>The ids of <see cref="EndOfTurnTokens"/> that are single tokens of <paramref name="tokenizer"/>.</summary>
    public IReadOnlyList<int> EndOfTurnIds(ITokenizer tokenizer) => EndOfTurnTokens
        .Select(t => tokenizer.Encode(t, addBos: false))
        .Where(ids => ids.Count == 1)
        .Select(ids => ids[0])
        .ToArray();

    private static ChatTurn Normalise(ChatTurn turn)
    {
        string role = turn.Role.Trim().ToLowerInvariant();
        if (role == "developer") role = "system";
        if (role is not ("system" or "user" or "assistant"))
            throw new ArgumentException($"message role '{turn.Role}' is not supported; use system, user or assistant");
        return turn with { Role = role, Content = turn.Content ?? "" };
    }

    private List<Piece> ChatMl(List<ChatTurn> turns)
    {
        var sb = new StringBuilder();
        if (DefaultSystemPrompt is string system && turns[0].Role != "system")
            sb.Append("<|im_start|>system\n").Append(system).Append("<|im_end|>\n");
        foreach (var t in turns) sb.Append("<|im_start|>").Append(t.Role).Append('\n').Append(t.Content).Append("<|im_end|>\n");
        sb.Append("<|im_start|>assistant\n");
        return [new Text(sb.ToString())];
    }

    private static List<Piece> Llama3(List<ChatTurn> turns)
    {
        var sb = new StringBuilder();
        foreach (var t in turns)
            sb.Append("<|start_header_id|>").Append(t.Role).Append("<|end_header_id|>\n\n").Append(t.Content.Trim()).Append("<|eot_id|>");
        sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
        return [new Bos(), new Text(sb.ToString())];
    }

    // Llama 2: <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] ...
    // Mistral: <s>[INST] {system}\n\n{user} [/INST]{assistant}</s>[INST] ...
    private static List<Piece> Inst(List<ChatTurn> turns, bool llama2)
    {
        var pieces = new List<Piece>();
        string? system = null;
        bool first = true;
        foreach (var t in turns)
        {
            switch (t.Role)
            {
                case "system":
                    system = system is null ? t.Content : system + "\n\n" + t.Content;
                    break;
                case "user":
                {
                    string content = t.Content.Trim();
                    if (system is not null)
                    {
                        content = llama2 ? $"<<SYS>>\n{system.Trim()}\n<</SYS>>\n\n{content}" : $"{system.Trim()}\n\n{content}";
                        system = null;
                    }
                    if (llama2 || first) pieces.Add(new Bos());
                    pieces.Add(new Text("[INST] " + content + " [/INST]"));
                    first = false;
                    break;
                }
                default: // assistant
                    if (first && !llama2) pieces.Add(new Bos());
                    first = false;
                    pieces.Add(new Text(llama2 ? " " + t.Content.Trim() + " " : t.Content));
                    pieces.Add(new Eos());
                    break;
            }
        }
        if (first) pieces.Add(new Bos());
        if (system is not null) pieces.Add(new Text("[INST] " + (llama2 ? $"<<SYS>>\n{system.Trim()}\n<</SYS>>\n\n" : system.Trim() + "\n\n") + " [/INST]"));
        return pieces;
    }

    private static string? ReadTemplate(string modelDir, out string where)
    {
        string jinja = Path.Combine(modelDir, "chat_template.jinja");
        string config = Path.Combine(modelDir, "tokenizer_config.json");
        where = config;
        if (File.Exists(config))
        {
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(File.ReadAllBytes(config), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            }
            catch (JsonException e)
            {
                throw new ModelFormatException($"{config} is not valid JSON ({e.Message}); restore the file from the model's repository.", e);
            }
            using (doc)
            {
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("chat_template", out var t))
                {
                    if (t.ValueKind == JsonValueKind.String) return t.GetString();
                    // A list of named templates: the "default" one, else the first.
                    if (t.ValueKind == JsonValueKind.Array)
                    {
                        string? firstTemplate = null;
                        foreach (var item in t.EnumerateArray())
                        {
                            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("template", out var body) || body.ValueKind != JsonValueKind.String) continue;
                            firstTemplate ??= body.GetString();
                            if (item.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String && n.GetString() == "default") return body.GetString();
                        }
                        return firstTemplate;
                    }
                }
            }
        }
        if (File.Exists(jinja))
        {
            where = jinja;
            return File.ReadAllText(jinja);
        }
        return null;
    }

    // A ChatML template that opens with a fixed system message when the conversation has none (Qwen2, SmolLM2).
    private static string? DefaultSystem(string jinja)
    {
        var match = DefaultSystemPattern().Match(jinja);
        return match.Success ? match.Groups[1].Value.Replace("\\n", "\n") : null;
    }

    [GeneratedRegex(@"<\|im_start\|>system(?:\\n|\n)([^'""{}<]+)<\|im_end\|>")]
    private static partial Regex DefaultSystemPattern();
}
