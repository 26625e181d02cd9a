using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using LoraMixer.Server;
using LoraMixer.Serving;
using OpenAI.Chat;

namespace LoraMixer.Tests.Serving;

/// <summary>The server's edges: a full queue, the API key, and SIGTERM through the built tool.</summary>
public sealed class ServerLifecycleTests
{
    private static StringContent Json(string body) => new(body, System.Text.Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_full_queue_answers_429_with_Retry_After()
    {
        using var engine = ServingEngine.Load(new ServingOptions { ModelDir = ServingFixtures.Llama, ModelName = "base", MaxBatch = 1, MaxQueue = 1 });
        await using var server = await OpenAiServer.StartAsync(engine, new ServerOptions { Port = 0 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        // One request runs and one waits; the others, sent while both are held, are refused at once.
        var responses = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ =>
            http.PostAsync("v1/completions", Json("""{"model":"base","prompt":"a","max_tokens":200,"temperature":0}"""))));
        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToArray();
        Assert.NotEmpty(refused);
        Assert.True(responses.Count(r => r.StatusCode == HttpStatusCode.OK) >= 1);
        Assert.All(responses, r => Assert.Contains(r.StatusCode, new[] { HttpStatusCode.OK, HttpStatusCode.TooManyRequests }));
        Assert.Equal("1", refused[0].Headers.RetryAfter!.ToString());
        var error = JsonNode.Parse(await refused[0].Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("queue_full", (string?)error["code"]);
        Assert.Equal("rate_limit_error", (string?)error["type"]);
    }

    [Fact]
    public async Task With_an_API_key_every_route_but_health_needs_the_bearer_token()
    {
        using var engine = ServingEngine.Load(new ServingOptions { ModelDir = ServingFixtures.Llama, ModelName = "base" });
        await using var server = await OpenAiServer.StartAsync(engine, new ServerOptions { Port = 0, ApiKey = "sekret" });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("health")).StatusCode);
        foreach (string path in new[] { "v1/models", "metrics", "ready" })
        {
            var denied = await http.GetAsync(path);
            Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
            Assert.Equal("invalid_api_key", (string?)JsonNode.Parse(await denied.Content.ReadAsStringAsync())!["error"]!["code"]);
        }
        var v1 = new Uri(server.BaseAddress, "v1/");
        var e = await Assert.ThrowsAsync<ClientResultException>(() => ServerFixture.NewClient(v1, "wrong").GetChatClient("base").CompleteChatAsync([new UserChatMessage("x")]));
        Assert.Equal(401, e.Status);
        var ok = await ServerFixture.NewClient(v1, "sekret").GetChatClient("base").CompleteChatAsync([new UserChatMessage("x")], new ChatCompletionOptions { MaxOutputTokenCount = 3 });
        Assert.Equal(3, ok.Value.Usage.OutputTokenCount);
    }

    [Fact]
    public async Task SIGTERM_lets_a_running_stream_finish_then_the_tool_exits_0()
    {
        if (!OperatingSystem.IsLinux()) return;
        string dll = Path.Combine(AppContext.BaseDirectory, "LoraMixer.Cli.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { dll, "serve", "--model", ServingFixtures.Llama, "--model-name", "base", "--port", "0", "--shutdown-grace", "60" })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            string? line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            if (line is null)
            {
                process.WaitForExit(10_000);
                Assert.Fail("serve printed nothing: " + await stderr);
            }
            var url = new Uri(line!.Split(' ').First(w => w.StartsWith("http://", StringComparison.Ordinal)));
            using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(120) };
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
            {
                Content = Json("""{"model":"base","prompt":"a","max_tokens":200,"temperature":0,"stream":true}"""),
            };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: {", await reader.ReadLineAsync());
            Process.Start("kill", ["-TERM", process.Id.ToString()])!.WaitForExit();
            string rest = await reader.ReadToEndAsync();
            Assert.EndsWith("data: [DONE]\n\n", rest);
            Assert.Contains("\"finish_reason\":\"length\"", rest);
            Assert.True(process.WaitForExit(60_000), "serve did not exit after SIGTERM");
            Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}: {await stderr}");
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }
}
