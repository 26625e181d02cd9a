using System.Runtime.CompilerServices;
using LoraMixer.Generation;
using Microsoft.Extensions.AI;

namespace LoraMixer.Serving;

/// <summary>
/// <see cref="IChatClient"/> (Microsoft.Extensions.AI) over a <see cref="ServingEngine"/>: .NET applications chat with the
/// base model, an adapter or a mixer in-process, without HTTP, and share the engine's continuous batching with every
/// other caller. <see cref="ChatOptions.ModelId"/> picks the served model (default: the client's); the request's routing
/// choices go in <see cref="ChatOptions.AdditionalProperties"/> as <c>lora_mixer.top_k</c> (int),
/// <c>lora_mixer.experts</c> (string list) and <c>lora_mixer.force_expert</c> (string), and each response reports the
/// share of routing decisions per expert under <c>lora_mixer.expert_share</c>. Errors are
/// <see cref="ServingRequestException"/>s (unknown model, prompt too long, ...).
/// </summary>
public sealed class LoraMixerChatClient : IChatClient
{
    /// <summary>Key of the top-k override in <see cref="ChatOptions.AdditionalProperties"/>.</summary>
    public const string TopKKey = "lora_mixer.top_k";
    /// <summary>Key of the allowed experts in <see cref="ChatOptions.AdditionalProperties"/>.</summary>
    public const string ExpertsKey = "lora_mixer.experts";
    /// <summary>Key of the forced expert in <see cref="ChatOptions.AdditionalProperties"/>.</summary>
    public const string ForceExpertKey = "lora_mixer.force_expert";
    /// <summary>Key of the per-expert share in a response's <see cref="ChatResponse.AdditionalProperties"/>.</summary>
    public const string ExpertShareKey = "lora_mixer.expert_share";

    private readonly ServingEngine _engine;
    private readonly bool _ownsEngine;
    private readonly string _defaultModel;

    /// <summary>A client over <paramref name="engine"/>; <paramref name="model"/> is the served id used when a request names none (default: the base).</summary>
    public LoraMixerChatClient(ServingEngine engine, string? model = null, bool ownsEngine = false)
    {
        ArgumentNullException.ThrowIfNull(engine);
        _engine = engine;
        _ownsEngine = ownsEngine;
        _defaultModel = model ?? engine.Models[0].Id;
        if (engine.FindModel(_defaultModel) is null)
            throw new ArgumentException($"'{_defaultModel}' is not served; the engine serves {string.Join(", ", engine.Models.Select(m => m.Id))}");
        Metadata = new ChatClientMetadata("loramixer", null, _defaultModel);
    }

    /// <summary>Loads an engine for <paramref name="options"/> that the client owns (and disposes).</summary>
    public static LoraMixerChatClient Load(ServingOptions options, string? model = null) => new(ServingEngine.Load(options), model, ownsEngine: true);

    /// <summary>Provider "loramixer" and the default model id.</summary>
    public ChatClientMetadata Metadata { get; }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (handle, model) = Submit(messages, options, cancellationToken);
        var (text, summary) = await handle.CompleteAsync(cancellationToken).ConfigureAwait(false);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text))
        {
            ModelId = model,
            ResponseId = NewId(),
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = Finish(summary.FinishReason),
            Usage = Usage(summary),
            AdditionalProperties = Properties(summary),
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (handle, model) = Submit(messages, options, cancellationToken);
        string id = NewId();
        await foreach (var update in handle.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (update.Text.Length > 0)
                yield return new ChatResponseUpdate(ChatRole.Assistant, update.Text) { ResponseId = id, MessageId = id, ModelId = model, CreatedAt = DateTimeOffset.UtcNow };
            if (update.Summary is { } summary)
            {
                yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(Usage(summary))])
                {
                    ResponseId = id,
                    MessageId = id,
                    ModelId = model,
                    FinishReason = Finish(summary.FinishReason),
                    CreatedAt = DateTimeOffset.UtcNow,
                    AdditionalProperties = Properties(summary),
                };
            }
        }
    }

    private (GenerationHandle Handle, string Model) Submit(IEnumerable<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        string model = options?.ModelId ?? _defaultModel;
        var turns = new List<ChatTurn>();
        if (options?.Instructions is { Length: > 0 } instructions) turns.Add(new ChatTurn("system", instructions));
        turns.AddRange(messages.Select(m => new ChatTurn(m.Role.Value, m.Text)));
        IReadOnlyList<int> ids;
        try
        {
            ids = _engine.EncodeChat(turns);
        }
        catch (ArgumentException e)
        {
            throw ServingRequestException.Invalid(e.Message, "messages");
        }
        var generation = new GenerationOptions
        {
            MaxNewTokens = options?.MaxOutputTokens ?? _engine.RoomFor(ids.Count),
            Temperature = options?.Temperature ?? 1.0,
            TopP = options?.TopP ?? 1.0,
            TopK = options?.TopK ?? 0,
            Seed = options?.Seed is long seed ? unchecked((int)(seed ^ (seed >> 32))) : Random.Shared.Next(),
            StopStrings = (options?.StopSequences ?? []).Concat(_engine.ChatStopStrings).Distinct().ToArray(),
        };
        var request = new GenerationRequest(model, ids, generation, Routing(options), _engine.ChatStopIds);
        return (_engine.Submit(request, cancellationToken), model);
    }

    private static RoutingOverride? Routing(ChatOptions? options)
    {
        var props = options?.AdditionalProperties;
        if (props is null) return null;
        int? topK = props.TryGetValue(TopKKey, out object? k) && k is not null ? Convert.ToInt32(k, System.Globalization.CultureInfo.InvariantCulture) : null;
        IReadOnlyList<string>? experts = props.TryGetValue(ExpertsKey, out object? e) && e is IEnumerable<string> names ? names.ToArray() : null;
        string? force = props.TryGetValue(ForceExpertKey, out object? f) ? f as string : null;
        var routing = new RoutingOverride(topK, experts, force);
        return routing.IsEmpty ? null : routing;
    }

    private static ChatFinishReason Finish(FinishReason reason) => reason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;

    private static UsageDetails Usage(GenerationSummary s) => new()
    {
        InputTokenCount = s.PromptTokens,
        OutputTokenCount = s.CompletionTokens,
        TotalTokenCount = s.PromptTokens + s.CompletionTokens,
    };

    private static AdditionalPropertiesDictionary Properties(GenerationSummary s) => new()
    {
        [ExpertShareKey] = s.ExpertShare,
    };

    private static string NewId() => "chatcmpl-" + Guid.NewGuid().ToString("N")[..24];

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return Metadata;
        if (serviceType.IsInstanceOfType(_engine)) return _engine;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsEngine) _engine.Dispose();
    }
}
