using System.Text.Json;
using LoraMixer.Generation;
using LoraMixer.Serving;

namespace LoraMixer.Server;

/// <summary>The fields completions and chat completions share: model, sampling, stop, n, streaming and <c>lora_mixer</c>.</summary>
internal sealed record SamplingFields(
    string Model,
    int N,
    bool Stream,
    bool IncludeUsage,
    double Temperature,
    double TopP,
    int TopK,
    int? Seed,
    IReadOnlyList<string> Stop,
    int? MaxTokens,
    RoutingOverride? Routing,
    bool IgnoreEos)
{
    public static SamplingFields Read(RequestFields f, bool chat, int maxChoices)
    {
        string model = f.RequiredString("model");
        int n = (int)(f.Integer("n", 1, maxChoices) ?? 1);
        bool stream = f.Bool("stream") ?? false;
        bool includeUsage = f.Object("stream_options")?.Bool("include_usage") ?? false;
        double temperature = f.Number("temperature", 0, 2) ?? 1.0;
        double topP = f.Number("top_p", 0, 1) ?? 1.0;
        if (topP == 0) throw ServingRequestException.Invalid("Invalid value for 'top_p': it must be greater than 0.", "top_p", "invalid_value");
        int topK = (int)(f.Integer("top_k", -1, int.MaxValue) ?? 0);
        if (topK < 0) topK = 0; // vLLM's -1: all tokens
        long? seed = f.Integer("seed", long.MinValue, long.MaxValue);
        var stop = f.Strings("stop", 4) ?? [];
        long? maxTokens = f.Integer("max_tokens", 0, int.MaxValue);
        if (chat) maxTokens = f.Integer("max_completion_tokens", 0, int.MaxValue) ?? maxTokens;

        bool Zero(JsonElement e) => e.ValueKind == JsonValueKind.Number && e.GetDouble() == 0;
        f.Unsupported("presence_penalty", Zero, "penalties are not applied; leave it at 0");
        f.Unsupported("frequency_penalty", Zero, "penalties are not applied; leave it at 0");
        f.Unsupported("logit_bias", e => e.ValueKind == JsonValueKind.Object && !e.EnumerateObject().Any(), "logit biases are not applied");
        f.Unsupported("best_of", e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int b) && b == n, "best_of must equal n");
        if (chat)
        {
            f.Unsupported("logprobs", e => e.ValueKind == JsonValueKind.False, "log-probabilities are not returned");
            f.Unsupported("top_logprobs", Zero, "log-probabilities are not returned");
            f.Unsupported("tools", e => e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 0, "tool calls are not supported");
            f.Unsupported("functions", e => e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 0, "function calls are not supported");
            f.Unsupported("response_format", e => e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "text",
                "only {\"type\": \"text\"} is supported");
        }
        else
        {
            f.Unsupported("logprobs", Zero, "log-probabilities are not returned");
            f.Unsupported("suffix", e => e.ValueKind == JsonValueKind.String && e.GetString()!.Length == 0, "suffixes (insertion) are not supported");
        }
        return new SamplingFields(model, n, stream, includeUsage, temperature, topP, topK,
            seed is long s ? unchecked((int)(s ^ (s >> 32))) : null, stop, (int?)maxTokens, ReadRouting(f), f.Bool("ignore_eos") ?? false);
    }

    private static RoutingOverride? ReadRouting(RequestFields f)
    {
        var o = f.Object("lora_mixer");
        if (o is null) return null;
        o.OnlyKnown("top_k", "experts", "force_expert");
        int? topK = (int?)o.Integer("top_k", 1, 1024);
        IReadOnlyList<string>? experts = null;
        if (o.Get("experts") is { } e)
        {
            if (e.ValueKind != JsonValueKind.Array || e.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String))
                throw o.WrongType("experts", "an array of expert names", e);
            experts = e.EnumerateArray().Select(x => x.GetString()!).ToArray();
        }
        string? force = o.String("force_expert");
        var routing = new RoutingOverride(topK, experts, force);
        return routing.IsEmpty ? null : routing;
    }

    /// <summary>Decoding options of choice <paramref name="choice"/>: up to <paramref name="maxNewTokens"/> tokens, stopping also at <paramref name="extraStops"/>.</summary>
    public GenerationOptions Options(int choice, int maxNewTokens, IReadOnlyList<string> extraStops) => new()
    {
        MaxNewTokens = maxNewTokens,
        Temperature = Temperature,
        TopP = TopP,
        TopK = TopK,
        // Each choice samples with its own seed; without a seed, each request too.
        Seed = Seed is int s ? unchecked(s + choice) : Random.Shared.Next(),
        StopStrings = Stop.Concat(extraStops).Distinct().ToArray(),
        StopAtEos = !IgnoreEos,
    };
}
