using System.ClientModel;
using System.Text.Json.Nodes;
using LoraMixer.Generation;
using OpenAI.Chat;

#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
#pragma warning disable SCME0001 // so is the JSON patch that adds fields the SDK does not know

namespace LoraMixer.Tests.Serving;

/// <summary>
/// The server driven through the official OpenAI .NET SDK (and raw HTTP where the SDK has no call, e.g. legacy
/// completions and the lora_mixer extension): models, chat, streaming, errors, cancellation, and greedy output
/// identical to <c>generate</c>.
/// </summary>
public sealed class OpenAiSdkTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static ChatCompletionOptions Greedy(int tokens) => new() { Temperature = 0, MaxOutputTokenCount = tokens, Seed = 1 };

    // generate on the same chat prompt: the template's ids, greedy, stopping where the server stops a chat turn.
    private GenerationResult GenerateChat(string user, int tokens, string? adapter = null) =>
        ServingFixtures.Generate(ServingFixtures.Llama, "", new GenerationOptions { MaxNewTokens = tokens, StopStrings = server.Engine.ChatStopStrings },
            adapter: adapter is null ? null : ServingFixtures.Expert(adapter),
            promptIds: server.Engine.EncodeChat([new LoraMixer.Serving.ChatTurn("user", user)]), extraEos: server.Engine.ChatStopIds);

    [Fact]
    public async Task Models_lists_the_base_every_adapter_and_the_mixer_with_its_experts()
    {
        var models = (await server.Client().GetOpenAIModelClient().GetModelsAsync()).Value;
        Assert.Equal(["base", "alpha", "beta", "gamma", "mix"], models.Select(m => m.Id));
        Assert.All(models, m => Assert.Equal("loramixer", m.OwnedBy));
        var raw = await server.Get("v1/models");
        var mix = raw["data"]!.AsArray().Single(m => (string)m!["id"]! == "mix")!;
        Assert.Equal("mixer", (string)mix["lora_mixer"]!["kind"]!);
        Assert.Equal(["alpha", "beta", "gamma"], mix["lora_mixer"]!["experts"]!.AsArray().Select(e => (string)e!));
        Assert.Equal("base", (string)mix["parent"]!);
        var one = (await server.Client().GetOpenAIModelClient().GetModelAsync("beta")).Value;
        Assert.Equal("beta", one.Id);
    }

    [Fact]
    public async Task Greedy_chat_through_the_SDK_equals_generate_on_the_chat_prompt()
    {
        var chat = server.Client().GetChatClient("base");
        var completion = (await chat.CompleteChatAsync([new UserChatMessage("say 2:")], Greedy(20))).Value;
        var expected = GenerateChat("say 2:", 20);
        Assert.Equal(expected.Text, completion.Content[0].Text);
        Assert.Equal(expected.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(expected.TokenIds.Count, completion.Usage.OutputTokenCount);
        Assert.Equal(server.Engine.EncodeChat([new("user", "say 2:")]).Count, completion.Usage.InputTokenCount);
        Assert.Equal("base", completion.Model);
    }

    [Fact]
    public async Task Adapters_requested_at_once_each_equal_generate_with_that_adapter_merged()
    {
        string[] models = ["alpha", "base", "beta", "gamma", "alpha"];
        var tasks = models.Select(m => server.Client().GetChatClient(m).CompleteChatAsync([new UserChatMessage("count: 1 2")], Greedy(16))).ToArray();
        var completions = await Task.WhenAll(tasks);
        for (int i = 0; i < models.Length; i++)
            Assert.Equal(GenerateChat("count: 1 2", 16, models[i] == "base" ? null : models[i]).Text, completions[i].Value.Content[0].Text);
    }

    [Fact]
    public async Task Streaming_chat_concatenates_to_the_whole_response_and_reports_usage()
    {
        var chat = server.Client().GetChatClient("mix");
        var whole = (await chat.CompleteChatAsync([new UserChatMessage("hello")], Greedy(24))).Value;
        var text = new System.Text.StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int updates = 0;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("hello")], Greedy(24)))
        {
            updates++;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.True(updates > 3, $"{updates} updates");
        Assert.Equal(whole.FinishReason, finish);
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.OutputTokenCount, usage!.OutputTokenCount);
    }

    [Fact]
    public async Task Streamed_completion_is_OpenAI_chunks_ending_with_DONE()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
        {
            Content = new StringContent("""{"model":"base","prompt":"add 1 2:","max_tokens":12,"temperature":0,"stream":true}""", System.Text.Encoding.UTF8, "application/json"),
        };
        using var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        string body = await response.Content.ReadAsStringAsync();
        var events = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!).ToArray();
        Assert.All(chunks, c => Assert.Equal("text_completion", (string)c["object"]!));
        Assert.Equal("length", (string)chunks[^1]["choices"]![0]!["finish_reason"]!);
        string streamed = string.Concat(chunks.Select(c => (string)c["choices"]![0]!["text"]!));
        var expected = ServingFixtures.Generate(ServingFixtures.Llama, "add 1 2:", new GenerationOptions { MaxNewTokens = 12 });
        Assert.Equal(expected.Text, streamed);
    }

    [Fact]
    public async Task Completions_answer_every_prompt_and_choice_and_equal_generate()
    {
        var (status, body) = await server.Post("v1/completions",
            """{"model":"base","prompt":["add 3 1:","say hi"],"max_tokens":10,"temperature":0,"n":2,"echo":false}""");
        Assert.Equal(200, status);
        var choices = body["choices"]!.AsArray();
        Assert.Equal(4, choices.Count);
        string first = ServingFixtures.Generate(ServingFixtures.Llama, "add 3 1:", new GenerationOptions { MaxNewTokens = 10 }).Text;
        string second = ServingFixtures.Generate(ServingFixtures.Llama, "say hi", new GenerationOptions { MaxNewTokens = 10 }).Text;
        Assert.Equal([first, first, second, second], choices.Select(c => (string)c!["text"]!));
        Assert.Equal([0, 1, 2, 3], choices.Select(c => (int)c!["index"]!));
        var usage = body["usage"]!;
        Assert.Equal(server.Engine.EncodePrompt("add 3 1:").Count + server.Engine.EncodePrompt("say hi").Count, (int)usage["prompt_tokens"]!);
        Assert.Equal((int)usage["prompt_tokens"]! + (int)usage["completion_tokens"]!, (int)usage["total_tokens"]!);
    }

    [Fact]
    public async Task The_lora_mixer_object_forces_or_restricts_experts_and_the_response_reports_their_share()
    {
        var (status, forced) = await server.Post("v1/completions",
            """{"model":"mix","prompt":"abc","max_tokens":6,"temperature":0,"lora_mixer":{"force_expert":"beta"}}""");
        Assert.Equal(200, status);
        Assert.Equal(1.0, (double)forced["lora_mixer"]!["expert_share"]!["beta"]!);
        var (_, adapter) = await server.Post("v1/completions", """{"model":"beta","prompt":"abc","max_tokens":6,"temperature":0}""");
        Assert.Equal((string)adapter["choices"]![0]!["text"]!, (string)forced["choices"]![0]!["text"]!);
        var (_, restricted) = await server.Post("v1/completions",
            """{"model":"mix","prompt":"abc","max_tokens":6,"temperature":0,"lora_mixer":{"experts":["alpha","gamma"],"top_k":1}}""");
        var share = restricted["lora_mixer"]!["expert_share"]!.AsObject();
        Assert.DoesNotContain("beta", share.Select(kv => kv.Key));
        Assert.Equal(1.0, share.Sum(kv => (double)kv.Value!), 5);
        var (_, routed) = await server.Post("v1/completions", """{"model":"mix","prompt":"abc","max_tokens":6,"temperature":0}""");
        Assert.Equal("mixer", (string)routed["lora_mixer"]!["kind"]!);
        Assert.True(routed["lora_mixer"]!["expert_share"]!.AsObject().Count >= 2);
    }

    [Fact]
    public async Task An_unknown_model_is_404_through_the_SDK()
    {
        var e = await Assert.ThrowsAsync<ClientResultException>(() => server.Client().GetChatClient("nope").CompleteChatAsync([new UserChatMessage("x")]));
        Assert.Equal(404, e.Status);
        Assert.Contains("model_not_found", e.Message);
    }

    [Theory]
    [InlineData("{not json", null, null)]
    [InlineData("""[1, 2]""", null, null)]
    [InlineData("""{"model":"base","messages":[]}""", "messages", "empty_array")]
    [InlineData("""{"model":"base"}""", "messages", "missing_required_parameter")]
    [InlineData("""{"model":"base","messages":"hi"}""", "messages", "invalid_type")]
    [InlineData("""{"model":"base","messages":[{"role":"user","content":"x"}],"temperature":"hot"}""", "temperature", "invalid_type")]
    [InlineData("""{"model":"base","messages":[{"role":"user","content":"x"}],"temperature":3}""", "temperature", "invalid_value")]
    [InlineData("""{"model":"base","messages":[{"role":"user","content":"x"}],"max_tokens":100000}""", "max_tokens", "context_length_exceeded")]
    [InlineData("""{"model":"base","messages":[{"role":"robot","content":"x"}]}""", "messages", null)]
    [InlineData("""{"model":"base","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}""", "messages[0].content", "unsupported_content")]
    [InlineData("""{"model":"base","messages":[{"role":"user","content":"x"}],"lora_mixer":{"top_k":1}}""", "lora_mixer.top_k", null)]
    [InlineData("""{"model":"mix","messages":[{"role":"user","content":"x"}],"lora_mixer":{"experts":["delta"]}}""", "lora_mixer.experts", null)]
    [InlineData("""{"model":"mix","messages":[{"role":"user","content":"x"}],"lora_mixer":{"top_k":4}}""", "lora_mixer.top_k", null)]
    [InlineData("""{"model":"mix","messages":[{"role":"user","content":"x"}],"lora_mixer":{"adapter_path":"/etc"}}""", "lora_mixer.adapter_path", "unknown_parameter")]
    [InlineData("""{"model":"base","messages":[{"role":"user","content":"x"}],"n":100}""", "n", "invalid_value")]
    [InlineData("""{"model":"base","messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}""", "stop", "invalid_value")]
    [InlineData("""{"model":"base","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]}""", "tools", "unsupported_parameter")]
    public async Task Bad_chat_requests_are_400_with_OpenAI_error_json(string body, string? param, string? code)
    {
        var (status, json) = await server.Post("v1/chat/completions", body);
        Assert.Equal(400, status);
        var error = json["error"]!;
        Assert.Equal("invalid_request_error", (string)error["type"]!);
        Assert.False(string.IsNullOrWhiteSpace((string?)error["message"]));
        Assert.Equal(param, (string?)error["param"]);
        if (code is not null) Assert.Equal(code, (string?)error["code"]);
    }

    [Fact]
    public async Task A_prompt_longer_than_the_window_is_400()
    {
        string prompt = new('a', 400);
        var (status, json) = await server.Post("v1/completions", $$"""{"model":"base","prompt":"{{prompt}}","max_tokens":1}""");
        Assert.Equal(400, status);
        Assert.Equal("context_length_exceeded", (string?)json["error"]!["code"]);
        var e = await Assert.ThrowsAsync<ClientResultException>(() => server.Client().GetChatClient("base").CompleteChatAsync([new UserChatMessage(prompt)]));
        Assert.Equal(400, e.Status);
    }

    [Fact]
    public async Task A_client_that_cancels_frees_its_slot_at_the_next_step()
    {
        double before = await server.Metric("loramixer_requests_total{model=\"base\",outcome=\"cancelled\"}") ?? 0;
        using var cancel = new CancellationTokenSource();
        var chat = server.Client().GetChatClient("base");
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            // ignore_eos (through the SDK's JSON patch) keeps the request running until the client goes away.
            var options = new ChatCompletionOptions { MaxOutputTokenCount = 200 };
            options.Patch.Set("$.ignore_eos"u8, true);
            await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("go on")], options, cancel.Token))
                if (update.ContentUpdate.Count > 0 && ++seen == 2) await cancel.CancelAsync();
        });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(20)
               && ((await server.Metric("loramixer_requests_total{model=\"base\",outcome=\"cancelled\"}") ?? 0) <= before || await server.Metric("loramixer_batch_size") != 0))
            await Task.Delay(20);
        Assert.Equal(before + 1, await server.Metric("loramixer_requests_total{model=\"base\",outcome=\"cancelled\"}"));
        Assert.Equal(0, await server.Metric("loramixer_batch_size"));
    }

    [Fact]
    public async Task Health_ready_and_metrics_answer()
    {
        Assert.Equal("ok", (string)(await server.Get("health"))["status"]!);
        Assert.Equal("ready", (string)(await server.Get("ready"))["status"]!);
        await server.Post("v1/completions", """{"model":"mix","prompt":"metrics","max_tokens":3}""");
        string metrics = await server.Http.GetStringAsync("metrics");
        foreach (string name in new[] { "loramixer_requests_total", "loramixer_tokens_per_second", "loramixer_queue_depth", "loramixer_batch_size",
                     "loramixer_time_to_first_token_seconds_bucket", "loramixer_expert_load_total{model=\"mix\",layer=\"0\"" })
            Assert.Contains(name, metrics);
        var (status, json) = await server.Post("v1/nothing", "{}");
        Assert.Equal(404, status);
        Assert.NotNull(json["error"]);
    }
}
