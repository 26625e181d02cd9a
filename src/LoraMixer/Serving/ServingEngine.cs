using System.Diagnostics;
using System.Threading.Channels;
using LoraMixer.Errors;
using LoraMixer.Generation;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using LoraMixer.Quantization;
using LoraMixer.Runtime;
using LoraMixer.Tokenization;
using static TorchSharp.torch;

namespace LoraMixer.Serving;

/// <summary>
/// Serves a base model, PEFT adapters and LoRA-Mixers with continuous batching. One decode-loop thread does all the
/// tensor work (TorchSharp is used from one thread): between two decoding steps it admits waiting requests (prefills
/// them and lets them join the running batch) and drops finished or cancelled ones, up to
/// <see cref="ServingOptions.MaxBatch"/> requests. Requests for the base and for different adapters share one batch:
/// the adapters are the experts of one mixer over the base, each row forced to its own adapter (the base row to an
/// all-zero expert), as a mixer computes one-hot routing. Each mixer decodes its own batch with its learned routing.
/// Callers submit from any thread and read each request's text from its own channel.
/// </summary>
public sealed class ServingEngine : IDisposable
{
    /// <summary>The expert name the adapter bank gives the base (never a served name: it has angle brackets).</summary>
    private const string BaseExpertName = "<base>";

    /// <summary>Context of a model without a position limit (Mamba) unless told otherwise.</summary>
    public const int DefaultUnboundedContext = 4096;

    private readonly Channel<PendingRequest> _queue;
    private readonly Dictionary<string, (ServedModel Info, ModelRunner Runner)> _models;
    private readonly List<ModelRunner> _runners;
    private readonly HashSet<int> _eosIds;
    private readonly Dictionary<string, DecodeLane> _lanes = new(StringComparer.Ordinal);
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private readonly Action<string>? _log;
    private readonly int _maxBatch;
    private readonly TimeSpan _stepInterval;
    private volatile bool _draining, _abort;
    private int _active;

    private ServingEngine(ServingOptions options, ITokenizer tokenizer, ChatTemplate template, List<ModelRunner> runners,
        Dictionary<string, (ServedModel, ModelRunner)> models, IReadOnlyList<ServedModel> order, int context, Action<string>? log)
    {
        Tokenizer = tokenizer;
        ChatTemplate = template;
        _runners = runners;
        _models = models;
        Models = order;
        ContextLength = context;
        _log = log;
        _maxBatch = options.MaxBatch;
        _stepInterval = options.StepInterval;
        MaxQueue = options.MaxQueue;
        _eosIds = new HashSet<int>(ModelStructure.EosTokenIds(runners[0].Model));
        if (tokenizer.EosId is int eos) _eosIds.Add(eos);
        ChatStopIds = template.EndOfTurnIds(tokenizer);
        ChatStopStrings = template.EndOfTurnTokens.Where(t => tokenizer.Encode(t, addBos: false).Count != 1).ToArray();
        _queue = Channel.CreateBounded<PendingRequest>(new BoundedChannelOptions(options.MaxQueue)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
        Metrics.SetCapacity(options.MaxBatch);
        _thread = new Thread(Loop) { IsBackground = true, Name = "loramixer-decode" };
        _thread.Start();
        Metrics.SetState(0, 0, ready: true);
    }

    /// <summary>Every id requests may name: the base first, then the adapters, then the mixers.</summary>
    public IReadOnlyList<ServedModel> Models { get; }

    /// <summary>The base model's tokenizer.</summary>
    public ITokenizer Tokenizer { get; }

    /// <summary>The chat template of chat requests.</summary>
    public ChatTemplate ChatTemplate { get; }

    /// <summary>Ids that end an assistant turn besides EOS (the template's end-of-turn token).</summary>
    public IReadOnlyList<int> ChatStopIds { get; }

    /// <summary>The template's end-of-turn markers that this tokenizer spells with several tokens: stop strings of chat requests.</summary>
    public IReadOnlyList<string> ChatStopStrings { get; }

    /// <summary>Most tokens of prompt and output together.</summary>
    public int ContextLength { get; }

    /// <summary>Most requests that wait for a slot.</summary>
    public int MaxQueue { get; }

    /// <summary>Counters and gauges (Prometheus text).</summary>
    public ServingMetrics Metrics { get; } = new();

    /// <summary>True while requests are accepted (false once draining began).</summary>
    public bool IsReady => !_draining && _thread.IsAlive;

    /// <summary>The served model called <paramref name="id"/>, or null.</summary>
    public ServedModel? FindModel(string id) => _models.TryGetValue(id, out var m) ? m.Info : null;

    /// <summary>
    /// Loads the base model, its tokenizer and chat template, the adapters (as one bank of experts over the base) and
    /// each mixer (on its own copy of the base), then starts the decode loop.
    /// </summary>
    /// <exception cref="ModelFormatException">A folder is missing or malformed, or the chat template is unknown.</exception>
    /// <exception cref="AdapterMismatchException">An adapter or mixer does not fit the base.</exception>
    public static ServingEngine Load(ServingOptions options, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var device = TorchRuntime.ParseDevice(options.Device);
        string dir = options.ModelDir;
        if (!Directory.Exists(dir)) throw new ModelFormatException($"model folder {dir} does not exist");
        var tokenizer = TokenizerLoader.Load(dir);
        var template = ChatTemplate.FromModelFolder(dir, options.ChatTemplate, log);
        string baseId = options.ModelName ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)));
        if (options.ModelName is null && baseId.Length > 0)
        {
            // A folder name with other characters still serves, under a cleaned id.
            baseId = new string(baseId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-').ToArray());
            if (options.Adapters.Concat(options.Mixers).Any(a => a.Name == baseId)) baseId = "base";
        }
        if (baseId.Length == 0) baseId = "base";

        var runners = new List<ModelRunner>();
        var models = new Dictionary<string, (ServedModel, ModelRunner)>(StringComparer.Ordinal);
        var order = new List<ServedModel>();
        try
        {
            var baseModel = ModelLoader.LoadCausalLM(dir, device);
            ModelRunner bank;
            if (options.Adapters.Count == 0)
            {
                bank = new ModelRunner(baseId, baseModel, null, [], null);
            }
            else
            {
                LoraMixerModel mixer;
                try
                {
                    mixer = AdapterBank(baseModel, dir, options.Adapters);
                }
                catch
                {
                    baseModel.Dispose();
                    throw;
                }
                var names = options.Adapters.Select(a => a.Name).Append(BaseExpertName).ToArray();
                bank = new ModelRunner("adapters", baseModel, mixer, names, options.Adapters.Count);
            }
            runners.Add(bank);
            var baseInfo = new ServedModel(baseId, ServedModelKind.Base, null, [], null);
            models[baseId] = (baseInfo, bank);
            order.Add(baseInfo);
            foreach (var (name, _) in options.Adapters)
            {
                var info = new ServedModel(name, ServedModelKind.Adapter, baseId, [name], null);
                models[name] = (info, bank);
                order.Add(info);
            }
            foreach (var (name, mixerDir) in options.Mixers)
            {
                var copy = ModelLoader.LoadCausalLM(dir, device);
                LoraMixerModel mixer;
                try
                {
                    mixer = MixerCheckpoint.Load(copy, mixerDir);
                }
                catch
                {
                    copy.Dispose();
                    throw;
                }
                var runner = new ModelRunner(name, copy, mixer, mixer.ExpertNames, null);
                runners.Add(runner);
                var info = new ServedModel(name, ServedModelKind.Mixer, baseId, mixer.ExpertNames, mixer.Config.TopK);
                models[name] = (info, runner);
                order.Add(info);
            }
            foreach (var runner in runners)
                if (runner.Model is LlamaForCausalLM llama) llama.UseDecodeKernel = options.UseDecodeKernel;
            if (options.Quantize == "int8")
                foreach (var runner in runners)
                    log?.Invoke($"{runner.Label}: {Int8Quantizer.Quantize(runner.Model)}");
            int context = baseModel.MaxPositionEmbeddings >= (1 << 20) ? DefaultUnboundedContext : baseModel.MaxPositionEmbeddings;
            if (!runners[0].Batched)
                log?.Invoke($"{baseId} has no key/value cache (a state-space model): requests run side by side, one sequence per forward pass");
            return new ServingEngine(options, tokenizer, template, runners, models, order, context, log);
        }
        catch
        {
            foreach (var r in runners) r.Dispose();
            throw;
        }
    }

    // Every adapter an expert of one mixer over the base, plus an all-zero expert for the base itself; rows are routed
    // one-hot to their own (hard routing), so a row computes W x + s B A x with its adapter's A and B.
    private static LoraMixerModel AdapterBank(ICausalLM model, string baseDir, IReadOnlyList<(string Name, string Dir)> adapters)
    {
        var loaded = new List<PeftAdapter>();
        try
        {
            foreach (var (name, path) in adapters)
            {
                if (!Directory.Exists(path)) throw new ModelFormatException($"--adapter {name}={path}: the folder does not exist");
                loaded.Add(PeftAdapter.Load(path, name));
            }
            var shapes = TargetLinears.WeightShapes(model);
            foreach (var a in loaded)
            {
                a.CheckAgainst(shapes, $"the base model {baseDir}");
                if (a.Modules.FirstOrDefault(m => m.Value.Bias is not null) is { Value: not null } biased)
                    throw new AdapterMismatchException(
                        $"adapter {a.Directory}: it holds biases (e.g. of {biased.Key}), which a batch of adapters cannot keep per row; serve an adapter trained with \"bias\": \"none\"");
            }
            var targets = PlugAndPlayTargets.Select(model, loaded, null).Targets;
            var (architecture, hidden, layers) = ModelStructure.Describe(model);
            var config = new MixerConfig
            {
                BaseModel = baseDir,
                Architecture = architecture,
                HiddenSize = hidden,
                NumHiddenLayers = layers,
                Targets = targets,
                Experts = loaded.Select(a => a.Name).Append(BaseExpertName).Select(n => new MixerExpert(n, n)).ToArray(),
            };
            var layouts = loaded
                .Select(a => (Func<string, (int Rank, double Scaling)?>)(m => a.Modules.TryGetValue(m, out var w) ? (w.Rank, w.Scaling) : null))
                .Append(_ => null)
                .ToArray();
            var configs = loaded.Select(a => a.Config).Append(loaded[0].Config).ToArray();
            var bank = LoraMixerModel.Attach(model, config, configs, layouts);
            foreach (var p in bank.Projections)
                for (int e = 0; e < loaded.Count; e++)
                    if (loaded[e].Modules.TryGetValue(p.ModuleName, out var w))
                        p.SetExpert(e, w.A.to(model.Device), w.B.to(model.Device));
            bank.SetTrainable(routers: false, experts: false);
            bank.SetRouting(new RoutingSettings(RoutingMode.Hard));
            return bank;
        }
        finally
        {
            foreach (var a in loaded) a.Dispose();
        }
    }

    /// <summary>The ids of a completion prompt (BOS added where the tokenizer wants it), as <c>generate</c> encodes it.</summary>
    public IReadOnlyList<int> EncodePrompt(string prompt) => Tokenizer.Encode(prompt, addBos: true);

    /// <summary>The ids of a conversation through the chat template, ending with the assistant's turn opened.</summary>
    public IReadOnlyList<int> EncodeChat(IReadOnlyList<ChatTurn> turns) => ChatTemplate.Encode(turns, Tokenizer);

    /// <summary>Most new tokens a prompt of <paramref name="promptTokens"/> leaves room for.</summary>
    public int RoomFor(int promptTokens) => Math.Max(0, ContextLength - promptTokens);

    /// <summary>
    /// Checks <paramref name="request"/> and queues it. Returns at once; the text arrives through the handle.
    /// </summary>
    /// <exception cref="ServingRequestException">
    /// 404 unknown model; 400 bad prompt, options or routing; 429 queue full; 503 shutting down.
    /// </exception>
    public GenerationHandle Submit(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_draining || !_thread.IsAlive) throw new ServingRequestException(503, "the server is shutting down; send the request to another replica", code: "shutting_down");
        if (!_models.TryGetValue(request.Model, out var entry))
            throw new ServingRequestException(404, $"The model '{request.Model}' does not exist; GET /v1/models lists {string.Join(", ", Models.Select(m => m.Id))}", "model", "model_not_found");
        int prompt = request.PromptIds.Count;
        if (prompt == 0) throw ServingRequestException.Invalid("the prompt is empty (it encodes to no tokens)", "prompt");
        if (request.PromptIds.Any(id => id < 0 || id >= entry.Runner.Model.VocabSize))
            throw ServingRequestException.Invalid($"the prompt holds token ids outside the vocabulary (0..{entry.Runner.Model.VocabSize - 1})", "prompt");
        if (prompt >= ContextLength && request.Options.MaxNewTokens > 0 || prompt > ContextLength)
            throw ServingRequestException.Invalid(
                $"This model's maximum context length is {ContextLength} tokens, but the prompt has {prompt} tokens; shorten it", "messages", "context_length_exceeded");
        if (request.Options.MaxNewTokens > ContextLength - prompt)
            throw ServingRequestException.Invalid(
                $"This model's maximum context length is {ContextLength} tokens; the prompt has {prompt}, so max_tokens can be at most {ContextLength - prompt} (got {request.Options.MaxNewTokens})",
                "max_tokens", "context_length_exceeded");
        try
        {
            request.Options.Validate();
        }
        catch (ArgumentException e)
        {
            throw ServingRequestException.Invalid(e.Message);
        }
        var (routing, expert) = Resolve(entry.Info, entry.Runner, request.Routing);
        var pending = new PendingRequest(request, entry.Info, entry.Runner, routing, expert, request.Options.MaxNewTokens, cancellationToken);
        if (!_queue.Writer.TryWrite(pending))
        {
            Metrics.RecordHttpError(_draining ? 503 : 429);
            if (_draining) throw new ServingRequestException(503, "the server is shutting down; send the request to another replica", code: "shutting_down");
            throw new ServingRequestException(429, $"{MaxQueue} requests are already waiting (--max-queue); retry shortly", code: "queue_full");
        }
        return new GenerationHandle(pending);
    }

    private (LaneRouting Routing, int? Expert) Resolve(ServedModel model, ModelRunner runner, RoutingOverride? choice)
    {
        choice ??= new RoutingOverride();
        if (choice.ForceExpert is not null && (choice.TopK is not null || choice.Experts is not null))
            throw ServingRequestException.Invalid("lora_mixer.force_expert cannot be combined with top_k or experts", "lora_mixer.force_expert");
        int ExpertIndex(string name, string param)
        {
            int i = runner.ExpertNames.ToList().IndexOf(name);
            if (i < 0 || i == runner.BaseExpert)
            {
                var choices = runner.ExpertNames.Where((_, j) => j != runner.BaseExpert).ToArray();
                throw ServingRequestException.Invalid(
                    choices.Length == 0
                        ? $"'{model.Id}' has no experts to route to"
                        : $"'{name}' is not an expert of '{model.Id}'; choose one of {string.Join(", ", choices)}", param);
            }
            return i;
        }
        switch (model.Kind)
        {
            case ServedModelKind.Base:
            case ServedModelKind.Adapter:
                if (choice.TopK is not null || choice.Experts is not null)
                    throw ServingRequestException.Invalid(
                        $"lora_mixer.{(choice.TopK is not null ? "top_k" : "experts")} applies to mixers; '{model.Id}' is {(model.Kind == ServedModelKind.Base ? "the base model" : "an adapter")}",
                        choice.TopK is not null ? "lora_mixer.top_k" : "lora_mixer.experts");
                if (choice.ForceExpert is string forced)
                {
                    if (model.Kind == ServedModelKind.Adapter && forced != model.Id)
                        throw ServingRequestException.Invalid($"'{model.Id}' is an adapter; to run adapter '{forced}' name it as the model", "lora_mixer.force_expert");
                    return (LaneRouting.PerRow, ExpertIndex(forced, "lora_mixer.force_expert"));
                }
                if (runner.Mixer is null) return (LaneRouting.None, null);
                return (LaneRouting.PerRow, model.Kind == ServedModelKind.Base ? runner.BaseExpert : ExpertIndex(model.Id, "model"));
            default:
            {
                if (choice.ForceExpert is string one) return (LaneRouting.PerRow, ExpertIndex(one, "lora_mixer.force_expert"));
                bool[]? allowed = null;
                int available = runner.ExpertNames.Count;
                if (choice.Experts is { } names)
                {
                    if (names.Count == 0) throw ServingRequestException.Invalid("lora_mixer.experts is empty; name at least one expert or leave it out", "lora_mixer.experts");
                    allowed = new bool[runner.ExpertNames.Count];
                    foreach (string name in names) allowed[ExpertIndex(name, "lora_mixer.experts")] = true;
                    available = allowed.Count(a => a);
                    if (available == allowed.Length) allowed = null;
                }
                int k = choice.TopK ?? Math.Min(model.TopK ?? RoutingSettings.DefaultTopK, available);
                if (k < 1 || k > available)
                    throw ServingRequestException.Invalid($"lora_mixer.top_k must be between 1 and {available} (the experts it may choose from), got {k}", "lora_mixer.top_k");
                return (new LaneRouting(LaneRoutingMode.TopK, k, allowed), null);
            }
        }
    }

    /// <summary>Stops accepting requests (they get 503); the submitted ones go on.</summary>
    public void BeginDrain()
    {
        _draining = true;
        Metrics.SetState(_queue.Reader.Count, Volatile.Read(ref _active), ready: false);
    }

    /// <summary>
    /// Stops accepting requests, lets the submitted ones finish for up to <paramref name="grace"/>, then cancels what is
    /// still running. Returns once nothing runs.
    /// </summary>
    public async Task DrainAsync(TimeSpan grace)
    {
        BeginDrain();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < grace && (Volatile.Read(ref _active) > 0 || _queue.Reader.Count > 0) && _thread.IsAlive)
            await Task.Delay(20).ConfigureAwait(false);
        _abort = true;
        _queue.Writer.TryComplete();
        while ((Volatile.Read(ref _active) > 0 || _queue.Reader.Count > 0) && _thread.IsAlive)
            await Task.Delay(10).ConfigureAwait(false);
    }

    private void Loop()
    {
        // Inference only; gradient mode is per thread in libtorch, so this thread turns it off for itself.
        using var noGrad = no_grad();
        var reader = _queue.Reader;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                if (Volatile.Read(ref _active) == 0 && !_abort)
                {
                    try
                    {
                        if (!reader.WaitToReadAsync(_stop.Token).AsTask().GetAwaiter().GetResult())
                        {
                            _stop.Token.WaitHandle.WaitOne();
                            break;
                        }
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
                if (_abort) AbortAll();
                Admit(reader);
                foreach (var (key, lane) in _lanes.ToArray())
                {
                    foreach (var row in lane.AllRows.Where(r => r.Cancelled).ToArray())
                        End(lane, row, null, cancelled: true);
                    if (lane.Count == 0)
                    {
                        lane.Dispose();
                        _lanes.Remove(key);
                        continue;
                    }
                    IReadOnlyList<ServingRow> finished;
                    try
                    {
                        finished = lane.Step();
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        _log?.Invoke($"decoding failed for {lane.Runner.Label}: {e.Message}");
                        foreach (var row in lane.AllRows.ToArray()) End(lane, row, e, cancelled: false);
                        lane.Dispose();
                        _lanes.Remove(key);
                        continue;
                    }
                    foreach (var row in finished) End(lane, row, null, cancelled: false);
                }
                if (_stepInterval > TimeSpan.Zero && _lanes.Count > 0) Thread.Sleep(_stepInterval);
                Metrics.SetState(reader.Count, Volatile.Read(ref _active), ready: !_draining);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _log?.Invoke("decode loop: " + e.Message);
            }
        }
        AbortAll();
        while (reader.TryRead(out var left)) left.Output.Writer.TryComplete(new OperationCanceledException("the server stopped"));
    }

    private void Admit(ChannelReader<PendingRequest> reader)
    {
        while (Volatile.Read(ref _active) < _maxBatch && reader.TryRead(out var pending))
        {
            if (pending.Cancellation.IsCancellationRequested || _abort)
            {
                Metrics.RecordRequest(pending.Model.Id, "cancelled", 0, 0);
                pending.Output.Writer.TryComplete(new OperationCanceledException("the request was cancelled before it started"));
                continue;
            }
            string key = pending.Runner.Label + "|" + pending.Routing.Key;
            if (!_lanes.TryGetValue(key, out var lane)) _lanes[key] = lane = new DecodeLane(pending.Runner, pending.Routing, Metrics);
            var row = new ServingRow(pending, Tokenizer, _eosIds, pending.Runner.ExpertNames.Count);
            Interlocked.Increment(ref _active);
            if (pending.MaxNewTokens == 0)
            {
                End(lane, row, null, cancelled: false);
                continue;
            }
            if (lane.CanPrefillTogether(row))
            {
                lane.Waiting.Add(row);
                continue;
            }
            try
            {
                if (lane.Prefill(row)) End(lane, row, null, cancelled: false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _log?.Invoke($"prefill failed for {pending.Model.Id}: {e.Message}");
                End(lane, row, e, cancelled: false);
            }
        }
        // The short prompts that arrived since the last step, one kernel pass per lane.
        foreach (var lane in _lanes.Values)
        {
            if (lane.Waiting.Count == 0) continue;
            try
            {
                foreach (var row in lane.PrefillWaiting()) End(lane, row, null, cancelled: false);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _log?.Invoke($"prefill failed for {lane.Runner.Label}: {e.Message}");
                foreach (var row in lane.Waiting.ToArray()) End(lane, row, e, cancelled: false);
            }
        }
    }

    private void AbortAll()
    {
        foreach (var (key, lane) in _lanes.ToArray())
        {
            foreach (var row in lane.AllRows.ToArray()) End(lane, row, null, cancelled: true);
            lane.Dispose();
            _lanes.Remove(key);
        }
        while (_queue.Reader.TryRead(out var pending))
        {
            Metrics.RecordRequest(pending.Model.Id, "cancelled", 0, 0);
            pending.Output.Writer.TryComplete(new OperationCanceledException("the server stopped before the request started"));
        }
    }

    // Takes a row out of its lane and tells its reader: done, failed or cancelled.
    private void End(DecodeLane lane, ServingRow row, Exception? error, bool cancelled)
    {
        lane.Remove(row);
        Interlocked.Decrement(ref _active);
        var model = row.Request.Model.Id;
        if (cancelled)
        {
            Metrics.RecordRequest(model, "cancelled", row.PromptIds.Count, row.Generated.Count);
            row.Request.Output.Writer.TryComplete(new OperationCanceledException(_abort ? "the server stopped before the request finished" : "the request was cancelled"));
            return;
        }
        if (error is not null)
        {
            Metrics.RecordRequest(model, "error", row.PromptIds.Count, row.Generated.Count);
            row.Request.Output.Writer.TryComplete(new ServingRequestException(500, "generation failed: " + error.Message, code: "generation_failed"));
            return;
        }
        var summary = row.Complete(FinishReason.Length, lane.Runner.ExpertNames, lane.Runner.BaseExpert);
        Metrics.RecordRequest(model, "ok", summary.PromptTokens, summary.CompletionTokens);
    }

    /// <summary>Stops the decode loop (cancelling what still runs) and frees the models.</summary>
    public void Dispose()
    {
        _draining = true;
        _abort = true;
        _queue.Writer.TryComplete();
        _stop.Cancel();
        if (_thread.IsAlive && !_thread.Join(TimeSpan.FromSeconds(60)))
            _log?.Invoke("the decode loop did not stop within 60 s");
        foreach (var lane in _lanes.Values) lane.Dispose();
        _lanes.Clear();
        foreach (var runner in _runners) runner.Dispose();
        _stop.Dispose();
        Metrics.SetState(0, 0, ready: false);
    }
}
