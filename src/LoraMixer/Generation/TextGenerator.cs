using System.Runtime.CompilerServices;
using System.Threading.Channels;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using static TorchSharp.torch;

namespace LoraMixer.Generation;

/// <summary>
/// Autoregressive generation with a KV cache: one prefill pass over the (left-padded) prompts, then
/// one single-position pass per new token, so a decode step costs the same whatever the prompt length
/// apart from attending over the cache.
/// </summary>
public sealed class TextGenerator
{
    private readonly ICausalLM _model;
    private readonly ITokenizer _tokenizer;
    private readonly HashSet<int> _eosIds;

    /// <summary>
    /// Creates a generator; generation stops at the tokenizer's EOS and at any id in
    /// <paramref name="extraEosIds"/> (e.g. the config's <c>eos_token_id</c> list).
    /// </summary>
    public TextGenerator(ICausalLM model, ITokenizer tokenizer, IEnumerable<int>? extraEosIds = null)
    {
        _model = model;
        _tokenizer = tokenizer;
        _eosIds = new HashSet<int>(extraEosIds ?? Array.Empty<int>());
        if (tokenizer.EosId is int eos) _eosIds.Add(eos);
    }

    /// <summary>Generates a continuation of each prompt; <paramref name="onText"/> receives (prompt index, new text) as it appears.</summary>
    public IReadOnlyList<GenerationResult> Generate(IReadOnlyList<string> prompts, GenerationOptions options,
        Action<int, string>? onText = null, CancellationToken cancellationToken = default)
    {
        var ids = prompts.Select(p => _tokenizer.Encode(p, addBos: true)).ToArray();
        return GenerateFromIds(ids, options, onText, cancellationToken);
    }

    /// <summary>Streams the continuation of one prompt piece by piece.</summary>
    public async IAsyncEnumerable<string> StreamAsync(string prompt, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var producer = Task.Run(() =>
        {
            try
            {
                Generate(new[] { prompt }, options, (_, text) => channel.Writer.TryWrite(text), cancellationToken);
                channel.Writer.Complete();
            }
            catch (Exception e)
            {
                channel.Writer.Complete(e);
            }
        }, CancellationToken.None);
        await foreach (string piece in channel.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            yield return piece;
        await producer.ConfigureAwait(false);
    }

    /// <summary>Generation from token ids (BOS already included where wanted).</summary>
    public IReadOnlyList<GenerationResult> GenerateFromIds(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options,
        Action<int, string>? onText = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        int batch = prompts.Count;
        if (batch == 0) return Array.Empty<GenerationResult>();
        if (prompts.Any(p => p.Count == 0))
            throw new ArgumentException("a prompt encodes to no tokens and the tokenizer adds no BOS; give a non-empty prompt");
        int longest = prompts.Max(p => p.Count);
        if (longest > _model.MaxPositionEmbeddings)
            throw new ArgumentException(
                $"the prompt has {longest} tokens but the model accepts at most {_model.MaxPositionEmbeddings} (max_position_embeddings); shorten it");
        int maxNew = Math.Min(options.MaxNewTokens, _model.MaxPositionEmbeddings - longest);
        int capacity = longest + Math.Max(maxNew, 1);
        bool padded = prompts.Any(p => p.Count != longest);

        var sampler = new TokenSampler(options);
        var decoders = prompts.Select(_ => new StreamingDecoder(_tokenizer)).ToArray();
        var matchers = prompts.Select(_ => new StopStringMatcher(options.StopStrings)).ToArray();
        var generated = prompts.Select(_ => new List<int>()).ToArray();
        var texts = prompts.Select(_ => new System.Text.StringBuilder()).ToArray();
        var finish = new FinishReason?[batch];

        void Emit(int i, string text)
        {
            if (text.Length == 0) return;
            texts[i].Append(text);
            onText?.Invoke(i, text);
        }

        using var noGrad = no_grad();
        using var cache = _model.CreateCache(batch, capacity);
        using var mask = zeros(new long[] { batch, capacity }, ScalarType.Int64).DetachFromDisposeScope();
        Tensor? logits = null;
        try
        {
            using (var scope = NewDisposeScope())
            {
                var promptIds = new long[batch * longest];
                for (int i = 0; i < batch; i++)
                {
                    int offset = longest - prompts[i].Count; // left padding, as HF decoder-only generation does
                    for (int j = 0; j < prompts[i].Count; j++) promptIds[i * longest + offset + j] = prompts[i][j];
                    mask[i].narrow(0, offset, prompts[i].Count).fill_(1);
                }
                var input = tensor(promptIds, new long[] { batch, longest }).to(_model.Device);
                logits = _model.Forward(input, padded ? mask.narrow(1, 0, longest).to(_model.Device) : null, cache, lastPositionOnly: true)
                    .to(CPU).MoveToOuterDisposeScope();
            }

            for (int step = 0; step < maxNew; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                float[] rows = logits!.reshape(batch, -1).data<float>().ToArray();
                logits.Dispose();
                logits = null;
                int vocab = rows.Length / batch;
                var next = new long[batch];
                for (int i = 0; i < batch; i++)
                {
                    if (finish[i] is not null) continue;
                    int token = sampler.Next(rows.AsSpan(i * vocab, vocab));
                    next[i] = token;
                    if (options.StopAtEos && _eosIds.Contains(token)) { finish[i] = FinishReason.Eos; continue; }
                    generated[i].Add(token);
                    Emit(i, matchers[i].Push(decoders[i].Push(token)));
                    if (matchers[i].Stopped) finish[i] = FinishReason.StopString;
                }
                if (finish.All(f => f is not null) || step == maxNew - 1) break;

                using var scope = NewDisposeScope();
                int past = cache.Length;
                mask.narrow(1, past, 1).fill_(1);
                var input = tensor(next, new long[] { batch, 1 }).to(_model.Device);
                logits = _model.Forward(input, padded ? mask.narrow(1, 0, past + 1).to(_model.Device) : null, cache, lastPositionOnly: true)
                    .to(CPU).MoveToOuterDisposeScope();
            }
        }
        finally
        {
            logits?.Dispose();
        }

        var results = new GenerationResult[batch];
        for (int i = 0; i < batch; i++)
        {
            if (finish[i] != FinishReason.StopString) Emit(i, matchers[i].Push(decoders[i].Flush()));
            Emit(i, matchers[i].Flush());
            if (matchers[i].Stopped) finish[i] = FinishReason.StopString;
            results[i] = new GenerationResult(texts[i].ToString(), generated[i], finish[i] ?? FinishReason.Length);
        }
        return results;
    }
}
