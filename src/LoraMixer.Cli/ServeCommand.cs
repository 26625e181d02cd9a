using System.CommandLine;
using LoraMixer.Serving;
using LoraMixer.Server;

namespace LoraMixer.Cli;

/// <summary>
/// <c>serve</c>: the base model, PEFT adapters and LoRA-Mixers behind an OpenAI-compatible HTTP API with continuous
/// batching, until SIGTERM or Ctrl+C (which let running requests finish within the grace period, then exit 0).
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var device = CommonOptions.Device();
        var modelName = new Option<string?>("--model-name") { Description = "Id of the base model in requests (default: the folder's name)" };
        var adapters = new Option<string[]>("--adapter")
        {
            Description = "PEFT adapter to serve, as NAME=DIR (or DIR: named after the folder); repeatable. All adapters share one batch with the base",
        };
        var mixers = new Option<string[]>("--mixer") { Description = "LoRA-Mixer folder to serve, as NAME=DIR (or DIR); repeatable" };
        var host = new Option<string>("--host") { Description = "Address to bind (0.0.0.0 for every interface)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port to bind (0: any free port, printed at start)", DefaultValueFactory = _ => 8080 };
        var stepInterval = new Option<int>("--step-interval-ms") { Description = "Pause after every decode step, in ms (default 0; paces demos and cancellation tests)", DefaultValueFactory = _ => 0 };
        var maxBatch = new Option<int>("--max-batch") { Description = "Requests decoded together at most", DefaultValueFactory = _ => 16 };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests waiting for a slot at most; more get 429", DefaultValueFactory = _ => 256 };
        var apiKey = new Option<string?>("--api-key")
        {
            Description = "Require 'Authorization: Bearer KEY' on every route but /health (default: $LORAMIXER_API_KEY, else none)",
        };
        var chatTemplate = new Option<string?>("--chat-template")
        {
            Description = $"Chat template: {string.Join(", ", ChatTemplate.Names)} (default: recognised from tokenizer_config.json; {ChatTemplate.DefaultName} without one)",
        };
        var quantize = CommonOptions.Quantize();
        var grace = new Option<double>("--shutdown-grace") { Description = "Seconds running requests get to finish after SIGTERM", DefaultValueFactory = _ => 30 };
        var command = new Command("serve", "Serve the model, adapters and mixers behind an OpenAI-compatible HTTP API")
        {
            model, modelName, adapters, mixers, host, port, maxBatch, stepInterval, maxQueue, apiKey, chatTemplate, grace, device, quantize,
        };
        command.SetAction(result => CommonOptions.Run(result, () =>
        {
            var serving = new ServingOptions
            {
                ModelDir = result.GetValue(model)!,
                ModelName = result.GetValue(modelName),
                Adapters = Named(result.GetValue(adapters), "--adapter"),
                Mixers = Named(result.GetValue(mixers), "--mixer"),
                MaxBatch = result.GetValue(maxBatch),
                StepInterval = TimeSpan.FromMilliseconds(result.GetValue(stepInterval)),
                MaxQueue = result.GetValue(maxQueue),
                ChatTemplate = result.GetValue(chatTemplate),
                Device = result.GetValue(device) ?? "cpu",
                Quantize = result.GetValue(quantize),
            };
            var server = new ServerOptions
            {
                Host = result.GetValue(host)!,
                Port = result.GetValue(port),
                ApiKey = result.GetValue(apiKey) ?? NonEmpty(Environment.GetEnvironmentVariable("LORAMIXER_API_KEY")),
                ShutdownGrace = TimeSpan.FromSeconds(result.GetValue(grace)),
                Verbose = result.GetValue(CommonOptions.Verbose),
            };
            serving.Validate();
            server.Validate();
            return Serve(serving, server).GetAwaiter().GetResult();
        }));
        return command;
    }

    private static async Task<int> Serve(ServingOptions serving, ServerOptions options)
    {
        using var engine = ServingEngine.Load(serving, message => Console.Error.WriteLine("note: " + message));
        await using var server = await OpenAiServer.StartAsync(engine, options);
        Console.WriteLine($"serving {string.Join(", ", engine.Models.Select(m => m.Id))} at {server.BaseAddress} (chat template {engine.ChatTemplate.Name}; Ctrl+C or SIGTERM stops)");
        Console.Out.Flush();
        await server.WaitForShutdownAsync();
        Console.Error.WriteLine("stopped");
        return 0;
    }

    /// <summary>NAME=DIR pairs (or DIR alone, named after its folder).</summary>
    internal static IReadOnlyList<(string Name, string Dir)> Named(string[]? values, string option) =>
        (values ?? []).Select(v =>
        {
            int eq = v.IndexOf('=');
            if (eq == 0 || eq == v.Length - 1) throw new ArgumentException($"{option} {v}: give NAME=DIR");
            string dir = eq > 0 ? v[(eq + 1)..] : v;
            string name = eq > 0 ? v[..eq] : Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)));
            return (name, dir);
        }).ToArray();

    private static string? NonEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
