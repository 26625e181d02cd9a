using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace LoraMixer.Serving;

/// <summary>
/// Counters and gauges of a <see cref="ServingEngine"/>, written in the Prometheus text format: requests by outcome,
/// tokens (and tokens/s over the last 10 s), queue depth, batch size, time to first token, per-layer expert load.
/// Thread-safe: the decode loop records, any thread renders.
/// </summary>
public sealed class ServingMetrics
{
    private static readonly double[] TtftBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private static readonly TimeSpan RateWindow = TimeSpan.FromSeconds(10);

    private readonly object _lock = new();
    private readonly Dictionary<(string Model, string Outcome), long> _requests = new();
    private readonly Dictionary<string, long> _promptTokens = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _completionTokens = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Model, int Layer, string Expert), long> _expertLoad = new();
    private readonly Dictionary<int, long> _httpErrors = new();
    private readonly long[] _ttftCounts = new long[TtftBuckets.Length + 1];
    private readonly Queue<(long Ticks, int Tokens)> _recent = new();
    private double _ttftSum;
    private long _ttftCount, _steps, _prefills, _recentTokens;
    private int _queueDepth, _running, _maxBatch;
    private bool _ready;

    internal void SetCapacity(int maxBatch) => _maxBatch = maxBatch;

    internal void SetState(int queueDepth, int running, bool ready)
    {
        Volatile.Write(ref _queueDepth, queueDepth);
        Volatile.Write(ref _running, running);
        _ready = ready;
    }

    /// <summary>Requests waiting for a slot now.</summary>
    public int QueueDepth => Volatile.Read(ref _queueDepth);

    /// <summary>Requests being decoded now.</summary>
    public int Running => Volatile.Read(ref _running);

    /// <summary>Prefill passes so far: the short prompts that arrive between two steps share one.</summary>
    public long PrefillPasses
    {
        get
        {
            lock (_lock) return _prefills;
        }
    }

    /// <summary>Tokens generated per second over the last 10 seconds.</summary>
    public double TokensPerSecond
    {
        get
        {
            lock (_lock)
            {
                Trim(Stopwatch.GetTimestamp());
                return _recentTokens / RateWindow.TotalSeconds;
            }
        }
    }

    internal void RecordRequest(string model, string outcome, int promptTokens, int completionTokens)
    {
        lock (_lock)
        {
            _requests[(model, outcome)] = _requests.GetValueOrDefault((model, outcome)) + 1;
            _promptTokens[model] = _promptTokens.GetValueOrDefault(model) + promptTokens;
            _completionTokens[model] = _completionTokens.GetValueOrDefault(model) + completionTokens;
        }
    }

    /// <summary>Counts a refused HTTP request by status (400, 401, 404, 429, ...).</summary>
    public void RecordHttpError(int status)
    {
        lock (_lock) _httpErrors[status] = _httpErrors.GetValueOrDefault(status) + 1;
    }

    internal void RecordTimeToFirstToken(TimeSpan ttft)
    {
        double s = ttft.TotalSeconds;
        lock (_lock)
        {
            _ttftSum += s;
            _ttftCount++;
            int bucket = Array.FindIndex(TtftBuckets, b => s <= b);
            _ttftCounts[bucket < 0 ? TtftBuckets.Length : bucket]++;
        }
    }

    internal void RecordStep(int tokens, bool decodeStep = true)
    {
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (decodeStep) _steps++;
            else _prefills++;
            _recent.Enqueue((now, tokens));
            _recentTokens += tokens;
            Trim(now);
        }
    }

    internal void RecordExpertLoad(string model, int layer, string expert, long count)
    {
        if (count == 0) return;
        lock (_lock) _expertLoad[(model, layer, expert)] = _expertLoad.GetValueOrDefault((model, layer, expert)) + count;
    }

    private void Trim(long now)
    {
        long oldest = now - (long)(RateWindow.TotalSeconds * Stopwatch.Frequency);
        while (_recent.Count > 0 && _recent.Peek().Ticks < oldest) _recentTokens -= _recent.Dequeue().Tokens;
    }

    /// <summary>All metrics in the Prometheus text exposition format (version 0.0.4).</summary>
    public string ToPrometheusText()
    {
        var sb = new StringBuilder();
        string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        void Header(string name, string type, string help) => sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
            .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        double tokensPerSecond = TokensPerSecond;
        lock (_lock)
        {
            Header("loramixer_ready", "gauge", "1 when the model is loaded and requests are accepted");
            sb.Append("loramixer_ready ").Append(_ready ? 1 : 0).Append('\n');
            Header("loramixer_requests_total", "counter", "Finished generation requests (one per choice) by model and outcome");
            foreach (var ((model, outcome), n) in _requests.OrderBy(k => k.Key.Model).ThenBy(k => k.Key.Outcome))
                sb.Append("loramixer_requests_total{model=\"").Append(Escape(model)).Append("\",outcome=\"").Append(outcome).Append("\"} ").Append(n).Append('\n');
            Header("loramixer_http_errors_total", "counter", "Requests refused with an error status");
            foreach (var (status, n) in _httpErrors.OrderBy(k => k.Key))
                sb.Append("loramixer_http_errors_total{status=\"").Append(status).Append("\"} ").Append(n).Append('\n');
            Header("loramixer_prompt_tokens_total", "counter", "Prompt tokens of finished requests");
            foreach (var (model, n) in _promptTokens.OrderBy(k => k.Key))
                sb.Append("loramixer_prompt_tokens_total{model=\"").Append(Escape(model)).Append("\"} ").Append(n).Append('\n');
            Header("loramixer_generation_tokens_total", "counter", "Generated tokens of finished requests");
            foreach (var (model, n) in _completionTokens.OrderBy(k => k.Key))
                sb.Append("loramixer_generation_tokens_total{model=\"").Append(Escape(model)).Append("\"} ").Append(n).Append('\n');
            Header("loramixer_tokens_per_second", "gauge", "Tokens generated per second over the last 10 seconds");
            sb.Append("loramixer_tokens_per_second ").Append(F(tokensPerSecond)).Append('\n');
            Header("loramixer_decode_steps_total", "counter", "Decoding steps of the batch");
            sb.Append("loramixer_decode_steps_total ").Append(_steps).Append('\n');
            Header("loramixer_prefill_passes_total", "counter", "Prefill passes (short prompts that arrive together share one)");
            sb.Append("loramixer_prefill_passes_total ").Append(_prefills).Append('\n');
            Header("loramixer_queue_depth", "gauge", "Requests waiting for a batch slot");
            sb.Append("loramixer_queue_depth ").Append(QueueDepth).Append('\n');
            Header("loramixer_batch_size", "gauge", "Requests being decoded");
            sb.Append("loramixer_batch_size ").Append(Running).Append('\n');
            Header("loramixer_max_batch", "gauge", "Most requests decoded together (--max-batch)");
            sb.Append("loramixer_max_batch ").Append(_maxBatch).Append('\n');
            Header("loramixer_time_to_first_token_seconds", "histogram", "From submission to the first generated token");
            long cumulative = 0;
            for (int i = 0; i < TtftBuckets.Length; i++)
            {
                cumulative += _ttftCounts[i];
                sb.Append("loramixer_time_to_first_token_seconds_bucket{le=\"").Append(F(TtftBuckets[i])).Append("\"} ").Append(cumulative).Append('\n');
            }
            cumulative += _ttftCounts[^1];
            sb.Append("loramixer_time_to_first_token_seconds_bucket{le=\"+Inf\"} ").Append(cumulative).Append('\n');
            sb.Append("loramixer_time_to_first_token_seconds_sum ").Append(F(_ttftSum)).Append('\n');
            sb.Append("loramixer_time_to_first_token_seconds_count ").Append(_ttftCount).Append('\n');
            Header("loramixer_expert_load_total", "counter", "Tokens routed to each expert, per model and layer (a token counts once per chosen expert)");
            foreach (var ((model, layer, expert), n) in _expertLoad.OrderBy(k => k.Key.Model).ThenBy(k => k.Key.Layer).ThenBy(k => k.Key.Expert))
                sb.Append("loramixer_expert_load_total{model=\"").Append(Escape(model)).Append("\",layer=\"").Append(layer)
                    .Append("\",expert=\"").Append(Escape(expert)).Append("\"} ").Append(n).Append('\n');
        }
        return sb.ToString();
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}
