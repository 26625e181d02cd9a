using System.Diagnostics;
using LoraMixer.Generation;
using LoraMixer.Models.Modules;
using LoraMixer.Tokenization;

namespace LoraMixer.Serving;

/// <summary>
/// A running request in the decode loop: its sampler, streaming decoder and stop-string matcher (the same steps as
/// <see cref="TextGenerator"/>), how many of its positions the cache holds and the token to feed next.
/// </summary>
internal sealed class ServingRow : IDisposable
{
    private readonly IReadOnlySet<int> _eos;
    private readonly TokenSampler _sampler;
    private readonly StreamingDecoder _decoder;
    private readonly StopStringMatcher _matcher;
    private readonly bool _stopAtEos;
    private long _firstToken;

    public ServingRow(PendingRequest request, ITokenizer tokenizer, IReadOnlySet<int> eos, int experts)
    {
        Request = request;
        _eos = eos;
        var options = request.Request.Options;
        _sampler = new TokenSampler(options);
        _decoder = new StreamingDecoder(tokenizer);
        _matcher = new StopStringMatcher(options.StopStrings);
        _stopAtEos = options.StopAtEos;
        ExpertCounts = new long[experts];
    }

    public PendingRequest Request { get; }

    public IReadOnlyList<int> PromptIds => Request.Request.PromptIds;

    public int? HardExpert => Request.HardExpert;

    public List<int> Generated { get; } = [];

    /// <summary>Positions of this sequence that the cache holds.</summary>
    public int CachedLength { get; set; }

    /// <summary>The sampled token still to be fed to the model.</summary>
    public int NextToken { get; private set; }

    /// <summary>The row's own cache: after its prefill (until it joins a batch), or always when rows run alone.</summary>
    public IInferenceCache? OwnCache { get; set; }

    /// <summary>Index of the row in its batch cache.</summary>
    public int BatchIndex { get; set; }

    public FinishReason? Finish { get; private set; }

    public long[] ExpertCounts { get; }

    public long RoutedTokens { get; set; }

    public bool Cancelled => Request.Cancellation.IsCancellationRequested;

    /// <summary>Samples the next token from <paramref name="logits"/>, streams the new text; true when the row is done.</summary>
    public bool Accept(ReadOnlySpan<float> logits, ServingMetrics metrics)
    {
        int token = _sampler.Next(logits);
        if (Generated.Count == 0 && _firstToken == 0)
        {
            _firstToken = Stopwatch.GetTimestamp();
            metrics.RecordTimeToFirstToken(Stopwatch.GetElapsedTime(Request.Submitted, _firstToken));
        }
        if (_stopAtEos && (_eos.Contains(token) || Request.Request.ExtraStopIds?.Contains(token) == true))
        {
            Finish = FinishReason.Eos;
            return true;
        }
        Generated.Add(token);
        Emit(_matcher.Push(_decoder.Push(token)));
        if (_matcher.Stopped) Finish = FinishReason.StopString;
        else if (Generated.Count >= Request.MaxNewTokens) Finish = FinishReason.Length;
        else NextToken = token;
        return Finish is not null;
    }

    /// <summary>Ends the row with <paramref name="reason"/> (if not already ended): flushes held-back text and sends the summary.</summary>
    public GenerationSummary Complete(FinishReason reason, IReadOnlyList<string> expertNames, int? baseExpert)
    {
        var finish = Finish ?? reason;
        if (finish != FinishReason.StopString) Emit(_matcher.Push(_decoder.Flush()));
        Emit(_matcher.Flush());
        if (_matcher.Stopped) finish = FinishReason.StopString;
        Finish = finish;
        long total = ExpertCounts.Sum();
        var share = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int e = 0; e < ExpertCounts.Length; e++)
            if (e != baseExpert && ExpertCounts[e] > 0) share[expertNames[e]] = (double)ExpertCounts[e] / total;
        var ttft = _firstToken == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(Request.Submitted, _firstToken);
        var summary = new GenerationSummary(finish, PromptIds.Count, Generated.Count, share, RoutedTokens, ttft);
        Request.Output.Writer.TryWrite(new GenerationUpdate("", summary));
        Request.Output.Writer.TryComplete();
        return summary;
    }

    private void Emit(string text)
    {
        if (text.Length > 0) Request.Output.Writer.TryWrite(new GenerationUpdate(text));
    }

    public void Dispose()
    {
        OwnCache?.Dispose();
        OwnCache = null;
    }
}
