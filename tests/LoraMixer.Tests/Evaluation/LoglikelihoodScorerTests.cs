using LoraMixer.Evaluation;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Modules;
using LoraMixer.Tests.Models;
using LoraMixer.Tokenization;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Evaluation;

public sealed class LoglikelihoodScorerTests : IDisposable
{
    private readonly LlamaForCausalLM _model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
    private readonly ITokenizer _tokenizer = EvalTestData.DemoCharTokenizer();

    public void Dispose() => _model.Dispose();

    private static readonly LoglikelihoodRequest[] Requests =
    {
        new("Question: Is ice hot?\nAnswer:", " no"),
        new("Question: Is ice hot?\nAnswer:", " yes"),
        new("A film", " positive"),
        new("Question: Is ice hot?\nAnswer:", " maybe not"),
        new("", "Hello"),
        new("A film ", "negative"),
    };

    // Independent reference: one unbatched forward over the whole sequence, log-softmax by hand in double.
    private (double Sum, bool Greedy) ByHand(IReadOnlyList<int> ids, int continuationLength)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = _model.Forward(tensor(ids.Select(i => (long)i).ToArray(), new long[] { 1, ids.Count }))[0];
        int vocab = (int)logits.shape[1];
        var values = logits.data<float>().ToArray();
        double sum = 0;
        bool greedy = true;
        for (int p = ids.Count - continuationLength - 1; p < ids.Count - 1; p++)
        {
            var row = values.AsSpan(p * vocab, vocab);
            double max = double.NegativeInfinity;
            int argmax = 0;
            for (int v = 0; v < vocab; v++) if (row[v] > max) { max = row[v]; argmax = v; }
            double z = 0;
            for (int v = 0; v < vocab; v++) z += Math.Exp(row[v] - max);
            int target = ids[p + 1];
            sum += row[target] - max - Math.Log(z);
            greedy &= argmax == target;
        }
        return (sum, greedy);
    }

    [Fact]
    public void Scores_equal_a_hand_computed_log_softmax_of_the_whole_sequence()
    {
        var scorer = new LoglikelihoodScorer(_model, _tokenizer, batchSize: 4);
        var results = scorer.Score(Requests);
        for (int i = 0; i < Requests.Length; i++)
        {
            var (context, continuation) = scorer.Encode(Requests[i]);
            var (sum, greedy) = ByHand(context.Concat(continuation).ToList(), continuation.Count);
            Assert.Equal(sum, results[i].LogLikelihood, 3);
            Assert.Equal(greedy, results[i].IsGreedy);
            Assert.Equal(continuation.Count, results[i].ContinuationTokens);
            Assert.True(results[i].LogLikelihood < 0);
        }
    }

    /// <summary>Counts the tokens each forward pass processes.</summary>
    private sealed class CountingModel(ICausalLM inner) : ICausalLM
    {
        public long Tokens;
        public IModelFamily Family => inner.Family;
        public Device Device => inner.Device;
        public int VocabSize => inner.VocabSize;
        public int MaxPositionEmbeddings => inner.MaxPositionEmbeddings;
        public IInferenceCache CreateCache(long batch, int capacity) => inner.CreateCache(batch, capacity);
        public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, IInferenceCache? cache = null, bool lastPositionOnly = false)
        {
            Tokens += inputIds.numel();
            return inner.Forward(inputIds, attentionMask, cache, lastPositionOnly);
        }
        public void Dispose() { }
    }

    [Fact]
    public void Shared_contexts_are_computed_once_and_give_the_scores_of_whole_sequences()
    {
        const string longContext = "Question: Which of these is a fruit, and which one is a tool?\nAnswer:";
        var requests = new LoglikelihoodRequest[]
        {
            new(longContext, " apple"), new(longContext, " a hammer"), new(longContext, " b"), new(longContext, " carrot cake"),
            new("Short one:", " yes"), new("Short one:", " no"), new("Alone", " here"),
        };
        var shared = new CountingModel(_model);
        var whole = new CountingModel(_model);
        var a = new LoglikelihoodScorer(shared, _tokenizer, batchSize: 8).Score(requests);
        var b = new LoglikelihoodScorer(whole, _tokenizer, batchSize: 8, sharePrefix: false).Score(requests);
        for (int i = 0; i < requests.Length; i++)
        {
            Assert.Equal(b[i].LogLikelihood, a[i].LogLikelihood, 4);
            Assert.Equal(b[i].IsGreedy, a[i].IsGreedy);
            Assert.Equal(b[i].ContinuationTokens, a[i].ContinuationTokens);
        }
        Assert.True(shared.Tokens < whole.Tokens * 0.6, $"shared prefixes processed {shared.Tokens} tokens, whole sequences {whole.Tokens}");
    }

    [Fact]
    public void Contexts_cut_to_the_model_length_still_score_like_whole_sequences()
    {
        // Contexts longer than max_position_embeddings keep their last tokens; the cut differs per continuation length.
        string context = string.Concat(Enumerable.Repeat("a long context line. ", 1 + _model.MaxPositionEmbeddings / 10)) + "Answer:";
        var requests = new LoglikelihoodRequest[] { new(context, " yes"), new(context, " no, certainly not"), new(context, " maybe") };
        var a = new LoglikelihoodScorer(_model, _tokenizer, batchSize: 8).Score(requests);
        var b = new LoglikelihoodScorer(_model, _tokenizer, batchSize: 8, sharePrefix: false).Score(requests);
        for (int i = 0; i < requests.Length; i++) Assert.Equal(b[i].LogLikelihood, a[i].LogLikelihood, 4);
    }

    [Fact]
    public void Batched_scores_equal_one_request_at_a_time_in_input_order()
    {
        var batched = new LoglikelihoodScorer(_model, _tokenizer, batchSize: 8).Score(Requests);
        var single = new LoglikelihoodScorer(_model, _tokenizer, batchSize: 1);
        for (int i = 0; i < Requests.Length; i++)
        {
            var alone = single.Score(new[] { Requests[i] })[0];
            Assert.Equal(alone.LogLikelihood, batched[i].LogLikelihood, 4);
            Assert.Equal(alone.IsGreedy, batched[i].IsGreedy);
        }
    }

    [Fact]
    public void Trailing_context_whitespace_moves_to_the_continuation_and_BOS_starts_an_empty_context()
    {
        var scorer = new LoglikelihoodScorer(_model, _tokenizer);
        var (context, continuation) = scorer.Encode(new LoglikelihoodRequest("A film ", "negative"));
        Assert.Equal(_tokenizer.Encode("A film", addBos: true), context);
        Assert.Equal(_tokenizer.Encode(" negative", addBos: false), continuation);
        var (empty, hello) = scorer.Encode(new LoglikelihoodRequest("", "Hello"));
        Assert.Equal(new[] { _tokenizer.BosId!.Value }, empty);
        Assert.Equal(5, hello.Count);
    }

    [Fact]
    public void The_greedy_continuation_is_flagged_greedy_and_another_is_not()
    {
        // The random model may prefer ids the 100-token demo vocabulary lacks; take a context whose greedy pair is printable.
        foreach (string context in new[] { "Once upon", "The cat", "abc", "Hello world", "xyz", "Q: 1+1", "it was", "zebra" })
        {
            var ids = _tokenizer.Encode(context).ToList();
            var greedy = new List<int>();
            using (no_grad())
            {
                for (int s = 0; s < 2; s++)
                {
                    using var scope = NewDisposeScope();
                    var all = ids.Concat(greedy).Select(i => (long)i).ToArray();
                    greedy.Add((int)_model.Forward(tensor(all, new long[] { 1, all.Length }))[0, -1].argmax().item<long>());
                }
            }
            if (greedy.Any(g => g < 4 || g >= _tokenizer.VocabSize)) continue;
            string greedyText = _tokenizer.Decode(greedy);
            if (!_tokenizer.Encode(context + greedyText).SequenceEqual(ids.Concat(greedy))) continue;
            var results = new LoglikelihoodScorer(_model, _tokenizer).Score(new[]
            {
                new LoglikelihoodRequest(context, greedyText),
                new LoglikelihoodRequest(context, greedyText[..1] + (greedyText[1] == 'q' ? "z" : "q")),
            });
            Assert.True(results[0].IsGreedy);
            Assert.False(results[1].IsGreedy);
            Assert.True(results[0].LogLikelihood > results[1].LogLikelihood);
            return;
        }
        Assert.Fail("no candidate context has a printable greedy continuation");
    }

    [Fact]
    public void Progress_reaches_the_total()
    {
        var reports = new List<(int Done, int Total)>();
        new LoglikelihoodScorer(_model, _tokenizer, batchSize: 2).Score(Requests, new SyncProgress(reports));
        Assert.Equal((Requests.Length, Requests.Length), reports[^1]);
        Assert.True(reports.Count >= 3);
    }

    private sealed class SyncProgress(List<(int Done, int Total)> reports) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) value) => reports.Add(value);
    }

    [Fact]
    public void A_sequence_routed_mixer_scores_the_same_whole_or_with_its_context_prefilled()
    {
        // Whole passes are told where each context ends; the shared path decides at the end of its prefill.
        // Both must route from the context alone, so the scores agree; without the hook they would not.
        using var mixer = Mixing.MixerCachedDecodingTests.RandomMixer(_model, "tiny-llama", LoraMixer.Mixing.RouterInput.CausalMean,
            LoraMixer.Mixing.RouterInputNorm.None, LoraMixer.Mixing.RoutingGranularity.Sequence);
        var shared = new LoglikelihoodScorer(_model, _tokenizer, batchSize: 4, sharePrefix: true).Score(Requests.Take(2).ToArray());
        var whole = new LoglikelihoodScorer(_model, _tokenizer, batchSize: 4, sharePrefix: false, promptEnds: mixer.SetDecisionPositions)
            .Score(Requests.Take(2).ToArray());
        var blind = new LoglikelihoodScorer(_model, _tokenizer, batchSize: 4, sharePrefix: false).Score(Requests.Take(2).ToArray());
        for (int i = 0; i < 2; i++)
            Assert.Equal(shared[i].LogLikelihood, whole[i].LogLikelihood, 4);
        Assert.True(Enumerable.Range(0, 2).Any(i => Math.Abs(shared[i].LogLikelihood - blind[i].LogLikelihood) > 1e-3),
            "deciding after the continuation should change a score (else this test cannot tell)");
    }
}
