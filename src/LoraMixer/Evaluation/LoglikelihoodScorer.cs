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
/// last tokens. Requests with the same context share a batch. With prefix sharing (the default, for models whose
/// cache is a <see cref="Models.Modules.KvCache"/>: the Llama family) each distinct context of a batch is computed once, left-padded
/// next to the others, and its cached keys and values are copied to every continuation, which then runs as a second,
/// right-padded pass; otherwise every sequence runs whole (right-padded: causal attention never lets a real position
/// see the padding after it). Results come back in input order.
/// </summary>
public sealed class LoglikelihoodScorer
{
    private readonly ICausalLM _model;
    private readonly ITokenizer _tokenizer;
    private readonly int _batchSize;
    private readonly bool _addBos;
    private readonly bool _sharePrefix;
    private readonly Action<Tensor?>? _promptEnds;

    /// <summary>Creates a scorer running up to <paramref name="batchSize"/> sequences per forward pass.</summary>
    /// <param name="model">The model to score with.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="batchSize">Sequences per forward pass.</param>
    /// <param name="addBos">Prepend BOS to contexts.</param>
    /// <param name="sharePrefix">Compute each shared context once (see the class summary); false runs every sequence whole.</param>
    /// <param name="promptEnds">
    /// Called before every whole-sequence pass with the position of each row's last context token [B], and with
    /// null after it: a model whose routing decides once per prompt (a LoRA-Mixer with sequence routing) takes
    /// its decision there instead of after the continuation. (A shared context runs as its own prefill.)
    /// </param>
    public LoglikelihoodScorer(ICausalLM model, ITokenizer tokenizer, int batchSize = 8, bool addBos = true, bool sharePrefix = true,
        Action<Tensor?>? promptEnds = null)
    {
        _promptEnds = promptEnds;
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "batch size must be ≥ 1");
        _model = model;
        _tokenizer = tokenizer;
        _batchSize = batchSize;
        _addBos = addBos;
        _sharePrefix = sharePrefix;
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
        if (_sharePrefix && TryRunShared(batch, sequences, results)) return;
        int length = batch.Max(i => sequences[i].Input.Length);
        var ids = new long[batch.Count * length];
        for (int row = 0; row < batch.Count; row++)
            sequences[batch[row]].Input.CopyTo(ids, row * length);
        _promptEnds?.Invoke(tensor(batch.Select(i => (long)(sequences[i].Input.Length - sequences[i].ContinuationLength)).ToArray()).to(_model.Device));
        Tensor logits;
        try
        {
            logits = _model.Forward(tensor(ids, new long[] { batch.Count, length }).to(_model.Device));
        }
        finally
        {
            _promptEnds?.Invoke(null);
        }
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

    // Distinct contexts once (left-padded, one pass), then all continuations from copies of their context's cache.
    private bool TryRunShared(List<int> batch, (long[] Input, long[] Targets, int ContinuationLength)[] sequences, LoglikelihoodResult[] results)
    {
        long[] Context(int i) => sequences[i].Input[..(sequences[i].Input.Length - sequences[i].ContinuationLength + 1)];
        var groups = batch.GroupBy(i => string.Join(',', Context(i))).Select(g => g.ToList()).ToList();
        if (groups.Count == batch.Count) return false; // nothing shared: one whole pass is cheaper
        int contextLength = groups.Max(g => Context(g[0]).Length);
        int continuationInputs = batch.Max(i => sequences[i].ContinuationLength) - 1;
        if (contextLength + continuationInputs > _model.MaxPositionEmbeddings) return false; // padding would not fit the model
        var device = _model.Device;
        var contextIds = new long[groups.Count * contextLength];
        var contextMask = new long[groups.Count * contextLength];
        for (int g = 0; g < groups.Count; g++)
        {
            var ids = Context(groups[g][0]);
            int offset = g * contextLength + contextLength - ids.Length;
            ids.CopyTo(contextIds, offset);
            Array.Fill(contextMask, 1L, offset, ids.Length);
        }
        var contextMaskTensor = tensor(contextMask, new long[] { groups.Count, contextLength }).to(device);
        using var created = _model.CreateCache(groups.Count, contextLength + Math.Max(1, continuationInputs));
        if (created is not Models.Modules.KvCache cache) return false; // a recurrent state (Mamba) is not shared here
        var first = _model.Forward(tensor(contextIds, new long[] { groups.Count, contextLength }).to(device), contextMaskTensor, cache, lastPositionOnly: true)
            .select(1, 0).to_type(ScalarType.Float32).log_softmax(-1);                                   // [G, vocab]: first continuation token
        var rowGroup = batch.Select(i => (long)groups.FindIndex(g => g.Contains(i))).ToArray();
        Tensor? rest = null;                                                                              // [N, Lk, vocab]: the others
        if (continuationInputs > 0)
        {
            var rows = tensor(rowGroup).to(device);
            using var expanded = cache.SelectRows(rows);
            var ids = new long[batch.Count * continuationInputs];
            var mask = new long[batch.Count * continuationInputs];
            for (int r = 0; r < batch.Count; r++)
            {
                var (input, _, length) = sequences[batch[r]];
                input[^(length - 1)..].CopyTo(ids, r * continuationInputs);
                Array.Fill(mask, 1L, r * continuationInputs, length - 1);
            }
            var fullMask = cat(new[] { contextMaskTensor.index_select(0, rows), tensor(mask, new long[] { batch.Count, continuationInputs }).to(device) }, 1);
            rest = _model.Forward(tensor(ids, new long[] { batch.Count, continuationInputs }).to(device), fullMask, expanded)
                .to_type(ScalarType.Float32).log_softmax(-1);
        }
        for (int r = 0; r < batch.Count; r++)
        {
            var (input, targets, length) = sequences[batch[r]];
            var continuation = targets[^length..];
            var logProbs = rest is null ? first[rowGroup[r]].unsqueeze(0) : cat(new[] { first[rowGroup[r]].unsqueeze(0), rest[r].narrow(0, 0, length - 1) }, 0);
            var target = tensor(continuation, new long[] { length, 1 }).to(device);
            var picked = logProbs.gather(1, target).to(CPU).data<float>().ToArray();
            var greedy = logProbs.argmax(-1).to(CPU).data<long>().ToArray();
            double sum = 0;
            foreach (float lp in picked) sum += lp;
            bool isGreedy = true;
            for (int j = 0; j < length; j++) isGreedy &= greedy[j] == continuation[j];
            results[batch[r]] = new LoglikelihoodResult(sum, isGreedy, length, input.Length);
        }
        return true;
    }
}
