using LoraMixer.Models;
using LoraMixer.Tokenization;
using static TorchSharp.torch;

namespace LoraMixer.Evaluation;

/// <summary>
/// Computes log p(continuation | context) for many requests, batched. Tokenisation follows lm-evaluation-harness:
/// trailing whitespace of the context moves to the continuation, then context+continuation is encoded whole and
/// split at the length of the encoded context (so a merge across the boundary counts towards the continuation).
/// BOS is prepended when <c>addBos</c> and the tokenizer uses one (lm-eval's <c>add_bos_token</c>; our models are
/// trained with it); an empty context becomes just BOS (or EOS). Sequences longer than the model accepts keep their
/// last tokens. Requests with the same context share a batch; batches are right-padded (causal attention never lets
/// a real position see the padding after it) and run in one forward pass each; results come back in input order.
/// </summary>
public sealed class LoglikelihoodScorer
{
    private readonly ICausalLM _model;
    private readonly ITokenizer _tokenizer;
    private readonly int _batchSize;
    private readonly bool _addBos;

    /// <summary>Creates a scorer running up to <paramref name="batchSize"/> sequences per forward pass.</summary>
    public LoglikelihoodScorer(ICausalLM model, ITokenizer tokenizer, int batchSize = 8, bool addBos = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be ≥ 1");
        _model = model;
        _tokenizer = tokenizer;
        _batchSize = batchSize;
        _addBos = addBos;
    }

    /// <summary>The context and continuation ids of <paramref name="request"/>, split the lm-eval way.</summary>
    /// <exception cref="ArgumentException">The continuation is empty or encodes to no tokens.</exception>
    public (IReadOnlyList<int> Context, IReadOnlyList<int> Continuation) Encode(LoglikelihoodRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (string.IsNullOrEmpty(request.Continuation))
            throw new ArgumentException("a log-likelihood request needs a non-empty continuation", nameof(request));
        string context = request.Context, continuation = request.Continuation;
        int spaces = context.Length - context.TrimEnd().Length;
        if (spaces > 0)
        {
            continuation = context[^spaces..] + continuation;
            context = context[..^spaces];
        }
        List<int> contextIds;
        List<int> continuationIds;
        if (context.Length == 0)
        {
            int prefix = _tokenizer.BosId ?? _tokenizer.EosId
                ?? throw new ArgumentException("an empty context needs a BOS or EOS token, and the tokenizer has neither", nameof(request));
            contextIds = new List<int> { prefix };
            continuationIds = _tokenizer.Encode(continuation, addBos: false).ToList();
        }
        else
        {
            var whole = _tokenizer.Encode(context + continuation, _addBos);
            contextIds = _tokenizer.Encode(context, _addBos).ToList();
            continuationIds = whole.Skip(contextIds.Count).ToList();
            if (continuationIds.Count == 0) continuationIds = _tokenizer.Encode(continuation, addBos: false).ToList();
        }
        if (continuationIds.Count == 0)
            throw new ArgumentException($"the continuation \"{request.Continuation}\" encodes to no tokens", nameof(request));
        return (contextIds, continuationIds);
    }

    /// <summary>Scores every request; <paramref name="progress"/> hears (requests done, total) after each batch.</summary>
    public IReadOnlyList<LoglikelihoodResult> Score(IReadOnlyList<LoglikelihoodRequest> requests,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        int max = _model.MaxPositionEmbeddings;
        var sequences = new (long[] Input, long[] Targets, int ContinuationLength)[requests.Count];
        for (int i = 0; i < requests.Count; i++)
        {
            var (context, continuation) = Encode(requests[i]);
            if (continuation.Count > max)
                throw new ArgumentException($"request {i}'s continuation has {continuation.Count} tokens but the model accepts at most {max}; shorten it");
            var full = context.Concat(continuation).Select(t => (long)t).ToArray();
            if (full.Length - 1 > max) full = full[^(max + 1)..]; // keep the end, as lm-eval does
            sequences[i] = (full[..^1], full[1..], continuation.Count);
        }

        var results = new LoglikelihoodResult[requests.Count];
        int done = 0;
        foreach (var batch in Batches(requests, sequences))
        {
            cancellationToken.ThrowIfCancellationRequested();
            RunBatch(batch, sequences, results);
            done += batch.Count;
            progress?.Report((done, requests.Count));
        }
        return results;
    }

    // Groups of identical context, longest first, packed whole into batches (a group above the batch size alone spans several).
    private List<List<int>> Batches(IReadOnlyList<LoglikelihoodRequest> requests, (long[] Input, long[] Targets, int ContinuationLength)[] sequences)
    {
        var groups = Enumerable.Range(0, requests.Count)
            .GroupBy(i => requests[i].Context, StringComparer.Ordinal)
            .Select(g => g.OrderByDescending(i => sequences[i].Input.Length).ThenBy(i => i).ToList())
            .OrderByDescending(g => sequences[g[0]].Input.Length).ThenBy(g => g[0])
            .ToList();
        var batches = new List<List<int>>();
        var current = new List<int>();
        foreach (var group in groups)
        {
            if (current.Count > 0 && current.Count + group.Count > _batchSize)
            {
                batches.Add(current);
                current = new List<int>();
            }
            foreach (int index in group)
            {
                current.Add(index);
                if (current.Count == _batchSize)
                {
                    batches.Add(current);
                    current = new List<int>();
                }
            }
        }
        if (current.Count > 0) batches.Add(current);
        return batches;
    }

    private void RunBatch(List<int> batch, (long[] Input, long[] Targets, int ContinuationLength)[] sequences, LoglikelihoodResult[] results)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        int length = batch.Max(i => sequences[i].Input.Length);
        var ids = new long[batch.Count * length];
        for (int row = 0; row < batch.Count; row++)
            sequences[batch[row]].Input.CopyTo(ids, row * length);
        var logits = _model.Forward(tensor(ids, new long[] { batch.Count, length }).to(_model.Device));
        for (int row = 0; row < batch.Count; row++)
        {
            var (input, targets, continuationLength) = sequences[batch[row]];
            int start = input.Length - continuationLength;
            var span = logits[row].narrow(0, start, continuationLength).to_type(ScalarType.Float32);
            var target = tensor(targets[start..], new long[] { continuationLength, 1 }).to(span.device);
            var logProbs = span.log_softmax(-1).gather(1, target).to(CPU).data<float>().ToArray();
            var greedy = span.argmax(-1).to(CPU).data<long>().ToArray();
            double sum = 0;
            foreach (float lp in logProbs) sum += lp;
            bool isGreedy = true;
            for (int j = 0; j < continuationLength; j++) isGreedy &= greedy[j] == targets[start + j];
            results[batch[row]] = new LoglikelihoodResult(sum, isGreedy, continuationLength, input.Length);
        }
    }
}
