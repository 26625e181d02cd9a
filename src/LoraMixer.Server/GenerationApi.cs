using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using LoraMixer.Generation;
using LoraMixer.Serving;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LoraMixer.Server;

/// <summary>
/// <c>POST /v1/completions</c> and <c>POST /v1/chat/completions</c>: parse and check the request, queue one generation
/// per prompt and choice with the engine, and answer with the whole result or with server-sent events in OpenAI's
/// chunk format ending with <c>data: [DONE]</c>. The handler does no tensor work; a client that goes away cancels its
/// generations, which frees their batch slots at the next decoding step.
/// </summary>
internal sealed class GenerationApi(ServingEngine engine, ServerOptions options)
{
    private sealed record Prompt(IReadOnlyList<int> Ids, string Text);

    private sealed record Job(int Index, Prompt Prompt, GenerationHandle Handle);

    public Task Completions(HttpContext context) => Run(context, chat: false);

    public Task ChatCompletions(HttpContext context) => Run(context, chat: true);

    private async Task Run(HttpContext context, bool chat)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        try
        {
            var (document, fields) = await RequestFields.ReadAsync(context.Request.Body, context.RequestAborted);
            using (document)
            {
                var sampling = SamplingFields.Read(fields, chat, options.MaxChoices);
                if (engine.FindModel(sampling.Model) is null)
                    throw new ServingRequestException(404,
                        $"The model '{sampling.Model}' does not exist; GET /v1/models lists {string.Join(", ", engine.Models.Select(m => m.Id))}.",
                        "model", "model_not_found");
                bool echo = !chat && (fields.Bool("echo") ?? false);
                var prompts = chat ? [ChatPrompt(fields)] : CompletionPrompts(fields);
                var jobs = new List<Job>();
                try
                {
                    foreach (var prompt in prompts)
                    {
                        int room = engine.RoomFor(prompt.Ids.Count);
                        int maxNew = sampling.MaxTokens ?? (chat ? room : Math.Min(16, room));
                        for (int i = 0; i < sampling.N; i++)
                        {
                            var request = new GenerationRequest(sampling.Model, prompt.Ids,
                                sampling.Options(i, maxNew, chat ? engine.ChatStopStrings : []), sampling.Routing, chat ? engine.ChatStopIds : null);
                            jobs.Add(new Job(jobs.Count, prompt, engine.Submit(request, cancel.Token)));
                        }
                    }
                }
                catch
                {
                    await cancel.CancelAsync();
                    throw;
                }
                if (sampling.Stream) await Stream(context, sampling, jobs, chat, echo);
                else await Whole(context, sampling, jobs, chat, echo);
            }
        }
        catch (ServingRequestException e)
        {
            await OpenAiErrors.Write(context, e, engine.Metrics);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its generations are cancelled below.
        }
        catch (OperationCanceledException e)
        {
            await OpenAiErrors.Write(context, new ServingRequestException(503, e.Message + "; retry the request", code: "shutting_down"), engine.Metrics);
        }
        finally
        {
            await cancel.CancelAsync();
        }
    }

    private IReadOnlyList<Prompt> CompletionPrompts(RequestFields fields)
    {
        var value = fields.Get("prompt") ?? throw ServingRequestException.Invalid("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter");
        Prompt FromText(string text) => new(engine.EncodePrompt(text), text);
        Prompt FromIds(JsonElement array)
        {
            var ids = array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int id)
                ? id : throw fields.WrongType("prompt", "a string, an array of strings or an array of token ids", value)).ToArray();
            return new Prompt(ids, engine.Tokenizer.Decode(ids, skipSpecialTokens: false));
        }
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                return [FromText(value.GetString()!)];
            case JsonValueKind.Array when value.GetArrayLength() == 0:
                throw ServingRequestException.Invalid("Invalid value for 'prompt': the array is empty.", "prompt", "invalid_value");
            case JsonValueKind.Array when value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String):
                return value.EnumerateArray().Select(e => FromText(e.GetString()!)).ToArray();
            case JsonValueKind.Array when value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number):
                return [FromIds(value)];
            case JsonValueKind.Array when value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Array):
                return value.EnumerateArray().Select(FromIds).ToArray();
            default:
                throw fields.WrongType("prompt", "a string, an array of strings or an array of token ids", value);
        }
    }

    private Prompt ChatPrompt(RequestFields fields)
    {
        var value = fields.Get("messages") ?? throw ServingRequestException.Invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter");
        if (value.ValueKind != JsonValueKind.Array) throw fields.WrongType("messages", "an array of messages", value);
        if (value.GetArrayLength() == 0)
            throw ServingRequestException.Invalid("Invalid value for 'messages': give at least one message.", "messages", "empty_array");
        var turns = new List<ChatTurn>();
        int i = 0;
        foreach (var message in value.EnumerateArray())
        {
            string where = $"messages[{i++}]";
            if (message.ValueKind != JsonValueKind.Object)
                throw ServingRequestException.Invalid($"Invalid type for '{where}': expected an object, but got {RequestFields.Describe(message)} instead.", where, "invalid_type");
            var m = new RequestFields(message, where + ".");
            string role = m.RequiredString("role");
            string content;
            var c = m.Get("content");
            if (c is null) content = role == "assistant" ? "" : throw ServingRequestException.Invalid($"Missing required parameter: '{where}.content'.", where + ".content", "missing_required_parameter");
            else if (c.Value.ValueKind == JsonValueKind.String) content = c.Value.GetString()!;
            else if (c.Value.ValueKind == JsonValueKind.Array)
            {
                var parts = new List<string>();
                foreach (var part in c.Value.EnumerateArray())
                {
                    var p = new RequestFields(part, where + ".content[].");
                    if (part.ValueKind != JsonValueKind.Object || p.String("type") != "text")
                        throw ServingRequestException.Invalid($"'{where}.content': only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported.", where + ".content", "unsupported_content");
                    parts.Add(p.RequiredString("text"));
                }
                content = string.Concat(parts);
            }
            else throw m.WrongType("content", "a string or an array of text parts", c.Value);
            turns.Add(new ChatTurn(role, content));
        }
        try
        {
            return new Prompt(engine.EncodeChat(turns), "");
        }
        catch (ArgumentException e)
        {
            throw ServingRequestException.Invalid(e.Message, "messages");
        }
    }

    private static string FinishReason(FinishReason reason) => reason == Generation.FinishReason.Length ? "length" : "stop";

    private JsonObject Envelope(string id, string objectType, long created, string model) => new()
    {
        ["id"] = id,
        ["object"] = objectType,
        ["created"] = created,
        ["model"] = model,
        ["system_fingerprint"] = null,
    };

    private static JsonObject Usage(IEnumerable<Job> jobs, IEnumerable<GenerationSummary> summaries)
    {
        int prompt = jobs.Select(j => j.Prompt).Distinct().Sum(p => p.Ids.Count);
        int completion = summaries.Sum(s => s.CompletionTokens);
        return new JsonObject { ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion };
    }

    private JsonObject Routing(string model, IReadOnlyList<GenerationSummary> summaries)
    {
        var info = engine.FindModel(model)!;
        long routed = summaries.Sum(s => s.RoutedTokens);
        var weights = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var s in summaries)
            foreach (var (expert, share) in s.ExpertShare)
                weights[expert] = weights.GetValueOrDefault(expert) + share * Math.Max(1, s.RoutedTokens);
        double total = weights.Values.Sum();
        var shares = new JsonObject();
        foreach (var (expert, weight) in weights.OrderByDescending(kv => kv.Value)) shares[expert] = Math.Round(weight / total, 6);
        return new JsonObject
        {
            ["kind"] = info.Kind.ToString().ToLowerInvariant(),
            ["expert_share"] = shares,
            ["routed_tokens"] = routed,
        };
    }

    private async Task Whole(HttpContext context, SamplingFields sampling, List<Job> jobs, bool chat, bool echo)
    {
        var results = await Task.WhenAll(jobs.Select(j => j.Handle.CompleteAsync(context.RequestAborted)));
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var response = Envelope(NewId(chat), chat ? "chat.completion" : "text_completion", created, sampling.Model);
        var choices = new JsonArray();
        for (int i = 0; i < jobs.Count; i++)
        {
            var (text, summary) = results[i];
            choices.Add(chat
                ? new JsonObject
                {
                    ["index"] = i,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text, ["refusal"] = null },
                    ["logprobs"] = null,
                    ["finish_reason"] = FinishReason(summary.FinishReason),
                }
                : new JsonObject
                {
                    ["index"] = i,
                    ["text"] = echo ? jobs[i].Prompt.Text + text : text,
                    ["logprobs"] = null,
                    ["finish_reason"] = FinishReason(summary.FinishReason),
                });
        }
        response["choices"] = choices;
        var summaries = results.Select(r => r.Summary).ToArray();
        response["usage"] = Usage(jobs, summaries);
        response["lora_mixer"] = Routing(sampling.Model, summaries);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(response.ToJsonString(Json.Options), context.RequestAborted);
    }

    private async Task Stream(HttpContext context, SamplingFields sampling, List<Job> jobs, bool chat, bool echo)
    {
        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        string id = NewId(chat);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var ct = context.RequestAborted;

        async Task Send(JsonObject chunk)
        {
            await response.WriteAsync("data: " + chunk.ToJsonString(Json.Options) + "\n\n", ct);
            await response.Body.FlushAsync(ct);
        }

        JsonObject Chunk(int index, string? text, string? finish, bool first)
        {
            var chunk = Envelope(id, chat ? "chat.completion.chunk" : "text_completion", created, sampling.Model);
            JsonObject choice;
            if (chat)
            {
                var delta = new JsonObject();
                if (first) delta["role"] = "assistant";
                if (text is not null) delta["content"] = text;
                choice = new JsonObject { ["index"] = index, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = finish };
            }
            else
            {
                choice = new JsonObject { ["index"] = index, ["text"] = text ?? "", ["logprobs"] = null, ["finish_reason"] = finish };
            }
            chunk["choices"] = new JsonArray(choice);
            if (sampling.IncludeUsage) chunk["usage"] = null;
            return chunk;
        }

        await response.StartAsync(ct);
        var merged = Channel.CreateUnbounded<(int Index, GenerationUpdate? Update, Exception? Error)>();
        var readers = jobs.Select(async job =>
        {
            try
            {
                await foreach (var update in job.Handle.ReadAllAsync(ct)) merged.Writer.TryWrite((job.Index, update, null));
            }
            catch (Exception e)
            {
                merged.Writer.TryWrite((job.Index, null, e));
            }
        }).ToArray();
        _ = Task.WhenAll(readers).ContinueWith(_ => merged.Writer.TryComplete(), TaskScheduler.Default);

        foreach (var job in jobs)
        {
            if (chat) await Send(Chunk(job.Index, "", null, first: true));
            else if (echo) await Send(Chunk(job.Index, job.Prompt.Text, null, first: false));
        }
        var summaries = new GenerationSummary?[jobs.Count];
        bool failed = false;
        await foreach (var (index, update, error) in merged.Reader.ReadAllAsync(ct))
        {
            if (error is not null)
            {
                if (ct.IsCancellationRequested) return;
                var e = error as ServingRequestException ?? new ServingRequestException(error is OperationCanceledException ? 503 : 500, error.Message);
                engine.Metrics.RecordHttpError(e.Status);
                await Send(OpenAiErrors.Body(e));
                failed = true;
                break;
            }
            if (update!.Text.Length > 0) await Send(Chunk(index, update.Text, null, first: false));
            if (update.Summary is { } summary)
            {
                summaries[index] = summary;
                var last = Chunk(index, chat ? null : "", FinishReason(summary.FinishReason), first: false);
                last["lora_mixer"] = Routing(sampling.Model, [summary]);
                await Send(last);
            }
        }
        if (!failed && sampling.IncludeUsage)
        {
            var usage = Envelope(id, chat ? "chat.completion.chunk" : "text_completion", created, sampling.Model);
            usage["choices"] = new JsonArray();
            usage["usage"] = Usage(jobs, summaries.Where(s => s is not null)!);
            await Send(usage);
        }
        await response.WriteAsync("data: [DONE]\n\n", ct);
        await response.Body.FlushAsync(ct);
    }

    private static string NewId(bool chat) => (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N")[..24];
}
