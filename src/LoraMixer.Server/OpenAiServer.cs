using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using LoraMixer.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LoraMixer.Server;

/// <summary>
/// An OpenAI-compatible HTTP server (Kestrel) over a <see cref="ServingEngine"/>: <c>/v1/models</c>,
/// <c>/v1/completions</c>, <c>/v1/chat/completions</c>, <c>/health</c>, <c>/ready</c> and <c>/metrics</c>. On shutdown
/// (SIGTERM, Ctrl+C or <see cref="StopAsync"/>) it refuses new requests with 503, lets running ones finish within
/// <see cref="ServerOptions.ShutdownGrace"/>, then stops.
/// </summary>
public sealed class OpenAiServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private OpenAiServer(WebApplication app, Uri address)
    {
        _app = app;
        BaseAddress = address;
    }

    /// <summary>The address the server listens on, e.g. <c>http://127.0.0.1:8080/</c> (the real port when 0 was asked).</summary>
    public Uri BaseAddress { get; }

    /// <summary>Builds the server and starts listening.</summary>
    /// <exception cref="ArgumentException">Bad options.</exception>
    /// <exception cref="IOException">The address is in use or cannot be bound.</exception>
    public static async Task<OpenAiServer> StartAsync(ServingEngine engine, ServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        if (options.Verbose) builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownGrace + TimeSpan.FromSeconds(2));
        builder.WebHost.UseShutdownTimeout(options.ShutdownGrace + TimeSpan.FromSeconds(2));
        builder.Services.AddSingleton(engine);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<DrainClock>();
        builder.Services.AddHostedService<DrainOnShutdown>();
        builder.WebHost.UseKestrel(k =>
        {
            k.AddServerHeader = false;
            var address = options.Host == "localhost" ? IPAddress.Loopback
                : IPAddress.TryParse(options.Host.Trim('[', ']'), out var ip) ? ip
                : throw new ArgumentException($"--host {options.Host}: not an IP address; use e.g. 127.0.0.1, ::1 or 0.0.0.0");
            k.Listen(address, options.Port);
        });
        var app = builder.Build();
        var drainClock = new System.Diagnostics.Stopwatch();
        app.Services.GetRequiredService<DrainClock>().Clock = drainClock;
        // From the first moment of shutdown: new requests get 503 and /ready turns 503, while running ones go on.
        app.Lifetime.ApplicationStopping.Register(() =>
        {
            drainClock.Start();
            engine.BeginDrain();
        });
        Map(app, engine, options);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            await app.DisposeAsync();
            throw new IOException($"cannot listen on {options.Host}:{options.Port}: {e.Message}; choose another --port", e);
        }
        string url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new OpenAiServer(app, new Uri(url.EndsWith('/') ? url : url + "/"));
    }

    private static void Map(WebApplication app, ServingEngine engine, ServerOptions options)
    {
        var generation = new GenerationApi(engine, options);
        var models = new ModelsApi(engine);
        byte[]? key = options.ApiKey is null ? null : Encoding.UTF8.GetBytes(options.ApiKey);
        app.Use(async (context, next) =>
        {
            if (key is not null && context.Request.Path != "/health" && !Authorized(context, key))
            {
                await OpenAiErrors.Write(context, new ServingRequestException(401,
                    "Incorrect or missing API key; send the header 'Authorization: Bearer KEY' with the key given to --api-key.", code: "invalid_api_key"), engine.Metrics);
                return;
            }
            await next(context);
        });
        app.MapGet("/health", (HttpContext c) => WriteJson(c, 200, new JsonObject { ["status"] = "ok" }));
        app.MapGet("/ready", (HttpContext c) => engine.IsReady
            ? WriteJson(c, 200, new JsonObject { ["status"] = "ready", ["models"] = engine.Models.Count })
            : WriteJson(c, 503, new JsonObject { ["status"] = "draining" }));
        app.MapGet("/metrics", (HttpContext c) =>
        {
            c.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            return c.Response.WriteAsync(engine.Metrics.ToPrometheusText(), c.RequestAborted);
        });
        app.MapGet("/v1/models", models.List);
        app.MapGet("/v1/models/{**id}", (HttpContext c, string id) => models.One(c, id));
        app.MapPost("/v1/completions", generation.Completions);
        app.MapPost("/v1/chat/completions", generation.ChatCompletions);
        app.MapFallback((HttpContext c) => OpenAiErrors.Write(c, new ServingRequestException(404,
            $"Unknown request URL: {c.Request.Method} {c.Request.Path}. The server has GET /v1/models, POST /v1/completions, POST /v1/chat/completions, GET /health, /ready and /metrics.",
            code: "unknown_url"), engine.Metrics));
    }

    private static bool Authorized(HttpContext context, byte[] key)
    {
        string header = context.Request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()), key);
    }

    private static Task WriteJson(HttpContext context, int status, JsonObject body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(body.ToJsonString(Json.Options), context.RequestAborted);
    }

    /// <summary>Completes when the server has stopped (after SIGTERM or Ctrl+C and the drain).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Drains (new requests get 503, running ones finish within the grace period) and stops listening.</summary>
    public Task StopAsync() => _app.StopAsync();

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class DrainClock
    {
        public System.Diagnostics.Stopwatch Clock { get; set; } = new();
    }

    // Waits (within what is left of the grace period since shutdown began) for the requests still running, then
    // cancels them; Kestrel meanwhile stops accepting connections and waits for the responses in flight.
    private sealed class DrainOnShutdown(ServingEngine engine, ServerOptions options, DrainClock clock) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken)
        {
            var left = options.ShutdownGrace - clock.Clock.Elapsed;
            return engine.DrainAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero);
        }
    }
}
