using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using LoraMixer.Server;
using LoraMixer.Serving;
using OpenAI;

namespace LoraMixer.Tests.Serving;

/// <summary>
/// A running server on a free loopback port: tiny-llama as "base", the fixture mixer's experts alpha, beta and gamma
/// as adapters, and the fixture mixer as "mix".
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public static readonly string[] Adapters = ["alpha", "beta", "gamma"];

    public ServingEngine Engine { get; private set; } = null!;
    public OpenAiServer Server { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;

    public Uri V1 => new(Server.BaseAddress, "v1/");

    public async Task InitializeAsync()
    {
        Engine = ServingEngine.Load(new ServingOptions
        {
            ModelDir = ServingFixtures.Llama,
            ModelName = "base",
            Adapters = Adapters.Select(a => (a, ServingFixtures.Expert(a))).ToArray(),
            Mixers = [("mix", ServingFixtures.LlamaMixer)],
            MaxBatch = 8,
            StepInterval = TimeSpan.FromMilliseconds(20), // 200 tokens outlast a client's cancel (OpenAiSdkTests)
        });
        Server = await OpenAiServer.StartAsync(Engine, new ServerOptions { Port = 0 });
        Http = new HttpClient { BaseAddress = Server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Engine.Dispose();
    }

    /// <summary>The official client pointed at this server, without retries (so a 429 shows as one).</summary>
    public OpenAIClient Client(string key = "unused") => NewClient(V1, key);

    public static OpenAIClient NewClient(Uri v1, string key) =>
        new(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = v1, RetryPolicy = new ClientRetryPolicy(0), NetworkTimeout = TimeSpan.FromSeconds(60) });

    public async Task<(int Status, JsonObject Body)> Post(string path, string json)
    {
        using var response = await Http.PostAsync(path, new StringContent(json, System.Text.Encoding.UTF8, "application/json"));
        string text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, (JsonObject)JsonNode.Parse(text)!);
    }

    public async Task<JsonObject> Get(string path) => (await Http.GetFromJsonAsync<JsonObject>(path))!;

    /// <summary>The value of a metric line (first match of the name with its labels), or null.</summary>
    public async Task<double?> Metric(string nameWithLabels)
    {
        string text = await Http.GetStringAsync("metrics");
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(nameWithLabels + " ", StringComparison.Ordinal));
        return line is null ? null : double.Parse(line[(nameWithLabels.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
