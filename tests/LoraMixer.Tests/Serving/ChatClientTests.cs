using LoraMixer.Generation;
using LoraMixer.Serving;
using Microsoft.Extensions.AI;

namespace LoraMixer.Tests.Serving;

/// <summary>The in-process <see cref="IChatClient"/>: the same text as generate, streaming and not, with model and routing choices.</summary>
public sealed class ChatClientTests
{
    private static LoraMixerChatClient NewClient() => LoraMixerChatClient.Load(new ServingOptions
    {
        ModelDir = ServingFixtures.Llama,
        ModelName = "base",
        Adapters = [("alpha", ServingFixtures.Expert("alpha"))],
        Mixers = [("mix", ServingFixtures.LlamaMixer)],
    });

    [Fact]
    public async Task A_greedy_response_equals_generate_on_the_chat_prompt()
    {
        using IChatClient client = NewClient();
        var engine = (ServingEngine)client.GetService(typeof(ServingEngine))!;
        var response = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "add 2 2:")], new ChatOptions { Temperature = 0, MaxOutputTokens = 16 });
        var ids = engine.EncodeChat([new ChatTurn("user", "add 2 2:")]);
        var expected = ServingFixtures.Generate(ServingFixtures.Llama, "", new GenerationOptions { MaxNewTokens = 16, StopStrings = engine.ChatStopStrings },
            promptIds: ids, extraEos: engine.ChatStopIds);
        Assert.Equal(expected.Text, response.Text);
        Assert.Equal("base", response.ModelId);
        Assert.Equal(ids.Count, response.Usage!.InputTokenCount);
        Assert.Equal(expected.TokenIds.Count, response.Usage.OutputTokenCount);
        Assert.Equal(expected.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal("loramixer", client.GetService<ChatClientMetadata>()!.ProviderName);
    }

    [Fact]
    public async Task Streaming_updates_concatenate_to_the_response_and_end_with_usage()
    {
        using IChatClient client = NewClient();
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 20, ModelId = "mix" };
        var whole = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "hello")], options);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "hello")], options)) updates.Add(update);
        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        Assert.True(updates.Count > 2);
        Assert.Equal(whole.FinishReason, updates[^1].FinishReason);
        var usage = updates[^1].Contents.OfType<UsageContent>().Single();
        Assert.Equal(whole.Usage!.OutputTokenCount, usage.Details.OutputTokenCount);
        var streamedShare = (IReadOnlyDictionary<string, double>)updates[^1].AdditionalProperties![LoraMixerChatClient.ExpertShareKey]!;
        Assert.True(streamedShare.Count >= 2);
    }

    [Fact]
    public async Task The_model_id_picks_an_adapter_and_routing_choices_reach_the_mixer()
    {
        using IChatClient client = NewClient();
        ChatMessage[] messages = [new ChatMessage(ChatRole.User, "x y z")];
        var adapter = await client.GetResponseAsync(messages, new ChatOptions { Temperature = 0, MaxOutputTokens = 10, ModelId = "alpha" });
        var forced = await client.GetResponseAsync(messages, new ChatOptions
        {
            Temperature = 0,
            MaxOutputTokens = 10,
            ModelId = "mix",
            AdditionalProperties = new() { [LoraMixerChatClient.ForceExpertKey] = "alpha" },
        });
        Assert.Equal(adapter.Text, forced.Text);
        var share = (IReadOnlyDictionary<string, double>)forced.AdditionalProperties![LoraMixerChatClient.ExpertShareKey]!;
        Assert.Equal(1.0, share["alpha"]);
        var e = await Assert.ThrowsAsync<ServingRequestException>(() => client.GetResponseAsync(messages, new ChatOptions { ModelId = "nope" }));
        Assert.Equal(404, e.Status);
    }
}
