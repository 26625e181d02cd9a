using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraMixer.Server;
using LoraMixer.Serving;

namespace LoraMixer.Bench;

/// <summary>
/// Load on the OpenAI-compatible server: for each client count, that many clients stream completions back to back for
/// the given seconds (in-process server on a loopback port, continuous batching). One JSON line per level: completed
/// requests, errors, output tokens/s, p50/p99 time to first token and per-token latency (time between tokens of a
/// request), RSS of the process before and after the level. <c>--transport engine</c> skips HTTP: the clients submit
/// to the engine in process and read its updates, so the two lines apart show what HTTP and SSE cost per token.
/// </summary>
internal static class ServeBenchmark
{
    public static int Run(string[] args)
    {
        var options = new BenchArgs(args);
        string dir = options.Required("model");
        int[] levels = options.String("clients", "1,8,32").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int seconds = options.Int("seconds", 30);
        // Each level first runs its load for this long unmeasured, so that the figures and the RSS growth describe the
        // steady state (the first seconds at a new level allocate its lane cache, thread stacks and pools once).
        int warmup = options.Int("warmup-seconds", 5);
        int maxTokens = options.Int("max-tokens", 64);
        int maxBatch = options.Int("max-batch", Math.Max(16, levels.Max()));
        string? adapter = options.Optional("adapter");
        // --transport engine: the clients submit to the engine in process (no HTTP, no SSE), which isolates the decode loop.
        string transport = options.String("transport", "http");
        if (transport is not ("http" or "engine")) throw new ArgumentException($"--transport is http or engine, got {transport}");
        return RunAsync(dir, levels, seconds, warmup, maxTokens, maxBatch, adapter, transport == "engine").GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(string dir, int[] levels, int seconds, int warmup, int maxTokens, int maxBatch, string? adapter, bool inProcess)
    {
        using var engine = ServingEngine.Load(new ServingOptions
        {
            ModelDir = dir,
            ModelName = "base",
            MaxBatch = maxBatch,
            MaxQueue = Math.Max(256, levels.Max() * 2),
            Adapters = adapter is null ? [] : [("adapter", adapter)],
        });
        await using var server = await OpenAiServer.StartAsync(engine, new ServerOptions { Port = 0 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(10) };
        // A short warm-up so that the first level does not pay for JIT compilation.
        await OneRequest(http, "base", "warm up", 4, CancellationToken.None);
        foreach (int clients in levels)
        {
            GC.Collect();
            double rssBeforeWarmup = ProcessMemory.CurrentRssMb();
            if (warmup > 0) await Load(clients, warmup);
            GC.Collect();
            double rssBefore = ProcessMemory.CurrentRssMb();
            var (elapsed, completed, errors, tokens, ttft, perToken) = await Load(clients, seconds);
            GC.Collect();
            var line = new Dictionary<string, object>
            {
                ["bench"] = "serve",
                ["model"] = Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/')),
                ["transport"] = inProcess ? "engine" : "http",
                ["clients"] = clients,
                ["warmup_seconds"] = warmup,
                ["seconds"] = Math.Round(elapsed, 1),
                ["max_batch"] = maxBatch,
                ["max_tokens"] = maxTokens,
                ["completed"] = completed,
                ["errors"] = errors,
                ["output_tok_s"] = Math.Round(tokens / elapsed, 1),
                ["ttft_ms_p50"] = Percentile(ttft, 50),
                ["ttft_ms_p99"] = Percentile(ttft, 99),
                ["per_token_ms_p50"] = Percentile(perToken, 50),
                ["per_token_ms_p99"] = Percentile(perToken, 99),
                ["rss_mb_before_warmup"] = Math.Round(rssBeforeWarmup, 1),
                ["rss_mb_before"] = Math.Round(rssBefore, 1),
                ["rss_mb_after"] = Math.Round(ProcessMemory.CurrentRssMb(), 1),
            };
            Console.WriteLine(JsonSerializer.Serialize(line));
        }
        return 0;

        // `clients` concurrent clients, each sending one request after another until `duration` seconds have passed.
        async Task<(double Elapsed, int Completed, int Errors, long Tokens, List<double> Ttft, List<double> PerToken)> Load(int clients, int duration)
        {
            var ttft = new List<double>();
            var perToken = new List<double>();
            long tokens = 0;
            int completed = 0, errors = 0;
            var clock = Stopwatch.StartNew();
            var deadline = TimeSpan.FromSeconds(duration);
            var tasks = Enumerable.Range(0, clients).Select(async c =>
            {
                int i = 0;
                while (clock.Elapsed < deadline)
                {
                    string model = adapter is not null && c % 2 == 1 ? "adapter" : "base";
                    string prompt = $"client {c} request {i++}: once upon a time";
                    var r = inProcess
                        ? await OneEngineRequest(engine, model, prompt, maxTokens)
                        : await OneRequest(http, model, prompt, maxTokens, CancellationToken.None);
                    lock (ttft)
                    {
                        if (r is null)
                        {
                            errors++;
                            continue;
                        }
                        completed++;
                        tokens += r.Value.Tokens;
                        ttft.Add(r.Value.TtftMs);
                        if (r.Value.Tokens > 1) perToken.Add(r.Value.PerTokenMs);
                    }
                }
            }).ToArray();
            await Task.WhenAll(tasks);
            return (clock.Elapsed.TotalSeconds, completed, errors, tokens, ttft, perToken);
        }
    }

    // One streamed completion: tokens received, time to the first one, mean time between the following ones; null on error.
    private static async Task<(int Tokens, double TtftMs, double PerTokenMs)?> OneRequest(HttpClient http, string model, string prompt, int maxTokens,
        CancellationToken cancellationToken)
    {
        var body = new JsonObject
        {
            ["model"] = model,
            ["prompt"] = prompt,
            ["max_tokens"] = maxTokens,
            ["temperature"] = 0,
            ["ignore_eos"] = true,
            ["stream"] = true,
            ["stream_options"] = new JsonObject { ["include_usage"] = true },
        };
        try
        {
            var sent = Stopwatch.StartNew();
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode) return null;
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
            double first = -1, last = 0;
            int tokens = 0;
            while (await reader.ReadLineAsync(cancellationToken) is string line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                string data = line[6..];
                if (data == "[DONE]") break;
                var chunk = JsonNode.Parse(data)!;
                if (chunk["error"] is not null) return null;
                if (chunk["usage"] is JsonObject usage) tokens = (int)usage["completion_tokens"]!;
                else if (chunk["choices"]?[0]?["text"] is JsonValue text && ((string?)text)?.Length > 0)
                {
                    last = sent.Elapsed.TotalMilliseconds;
                    if (first < 0) first = last;
                }
            }
            if (first < 0) return null;
            return (tokens, first, tokens > 1 ? (last - first) / (tokens - 1) : 0);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    // The same completion submitted to the engine directly; the updates are read as a client of the handle would.
    private static async Task<(int Tokens, double TtftMs, double PerTokenMs)?> OneEngineRequest(ServingEngine engine, string model, string prompt, int maxTokens)
    {
        var sent = Stopwatch.StartNew();
        try
        {
            var handle = engine.Submit(new GenerationRequest(model, engine.EncodePrompt(prompt),
                new LoraMixer.Generation.GenerationOptions { MaxNewTokens = maxTokens, StopAtEos = false }));
            double first = -1, last = 0;
            int tokens = 0;
            await foreach (var update in handle.ReadAllAsync())
            {
                if (update.Summary is { } summary) tokens = summary.CompletionTokens;
                else if (update.Text.Length > 0)
                {
                    last = sent.Elapsed.TotalMilliseconds;
                    if (first < 0) first = last;
                }
            }
            if (first < 0) return null;
            return (tokens, first, tokens > 1 ? (last - first) / (tokens - 1) : 0);
        }
        catch (ServingRequestException)
        {
            return null;
        }
    }

    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0) return 0;
        var sorted = values.Order().ToArray();
        int index = (int)Math.Ceiling(p / 100 * sorted.Length) - 1;
        return Math.Round(sorted[Math.Clamp(index, 0, sorted.Length - 1)], 2);
    }
}
