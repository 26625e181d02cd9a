using LoraMixer.Generation;
using LoraMixer.Models;
using LoraMixer.Models.Llama;
using LoraMixer.Tests.Models;
using static TorchSharp.torch;

namespace LoraMixer.Tests.Generation;

public sealed class TextGeneratorTests : IDisposable
{
    private readonly LlamaForCausalLM _model = LlamaLoader.Load(ReferenceFixture.Load("tiny-llama").Dir);
    private readonly CharTokenizer _tokenizer = new(128, bos: 1, eos: null);

    public void Dispose() => _model.Dispose();

    private List<int> GreedyByFullRecomputation(IReadOnlyList<int> prompt, int steps)
    {
        var ids = prompt.ToList();
        var generated = new List<int>();
        using var noGrad = no_grad();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var logits = _model.Forward(tensor(ids.Select(i => (long)i).ToArray(), new long[] { 1, ids.Count }))[0, -1];
            int next = TokenSampler.ArgMax(logits.data<float>().ToArray());
            ids.Add(next);
            generated.Add(next);
        }
        return generated;
    }

    [Fact]
    public void Greedy_generation_with_the_cache_equals_recomputing_everything_each_step()
    {
        var prompt = new[] { 1, 40, 41, 42, 7 };
        var result = new TextGenerator(_model, _tokenizer).GenerateFromIds(new[] { prompt }, new GenerationOptions { MaxNewTokens = 12 });
        Assert.Equal(GreedyByFullRecomputation(prompt, 12), result[0].TokenIds);
        Assert.Equal(FinishReason.Length, result[0].FinishReason);
        Assert.Equal(_tokenizer.Decode(result[0].TokenIds), result[0].Text);
    }

    [Fact]
    public void A_batch_of_prompts_of_different_lengths_equals_each_prompt_alone()
    {
        var prompts = new IReadOnlyList<int>[] { new[] { 1, 5 }, new[] { 1, 9, 10, 11, 12, 13, 14, 15 }, new[] { 1, 60, 61, 62 } };
        var generator = new TextGenerator(_model, _tokenizer);
        var options = new GenerationOptions { MaxNewTokens = 10 };
        var batched = generator.GenerateFromIds(prompts, options);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(generator.GenerateFromIds(new[] { prompts[i] }, options)[0].TokenIds, batched[i].TokenIds);
    }

    [Fact]
    public void Generation_stops_at_eos_without_emitting_it()
    {
        var prompt = new[] { 1, 40, 41 };
        var greedy = GreedyByFullRecomputation(prompt, 6);
        int eos = greedy[3];
        int firstEos = greedy.IndexOf(eos);
        var tokenizer = new CharTokenizer(128, bos: 1, eos: eos);
        var result = new TextGenerator(_model, tokenizer).GenerateFromIds(new[] { prompt }, new GenerationOptions { MaxNewTokens = 6 })[0];
        Assert.Equal(FinishReason.Eos, result.FinishReason);
        Assert.Equal(greedy.Take(firstEos), result.TokenIds);
    }

    [Fact]
    public void A_stop_string_ends_generation_and_is_not_part_of_the_text()
    {
        var generator = new TextGenerator(_model, _tokenizer);
        string full = generator.Generate(new[] { "abc" }, new GenerationOptions { MaxNewTokens = 16 })[0].Text;
        string stop = full.Substring(5, 2);
        int at = full.IndexOf(stop, StringComparison.Ordinal);
        var streamed = new List<string>();
        var result = generator.Generate(new[] { "abc" }, new GenerationOptions { MaxNewTokens = 16, StopStrings = new[] { stop } },
            (_, piece) => streamed.Add(piece))[0];
        Assert.Equal(FinishReason.StopString, result.FinishReason);
        Assert.Equal(full[..at], result.Text);
        Assert.Equal(result.Text, string.Concat(streamed));
    }

    [Fact]
    public void Sampling_is_reproducible_with_a_seed()
    {
        var generator = new TextGenerator(_model, _tokenizer);
        GenerationOptions Options(int seed) => new() { MaxNewTokens = 20, Temperature = 1.5, TopK = 40, TopP = 0.95, Seed = seed };
        var a = generator.Generate(new[] { "xyz" }, Options(7))[0].TokenIds;
        var b = generator.Generate(new[] { "xyz" }, Options(7))[0].TokenIds;
        var c = generator.Generate(new[] { "xyz" }, Options(8))[0].TokenIds;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public async Task Streaming_yields_the_same_text_as_generate()
    {
        var generator = new TextGenerator(_model, _tokenizer);
        var options = new GenerationOptions { MaxNewTokens = 15 };
        var pieces = new List<string>();
        await foreach (var piece in generator.StreamAsync("hello", options)) pieces.Add(piece);
        Assert.True(pieces.Count > 1);
        Assert.Equal(generator.Generate(new[] { "hello" }, options)[0].Text, string.Concat(pieces));
    }

    [Fact]
    public void A_prompt_longer_than_the_context_is_rejected_with_a_clear_message()
    {
        var prompt = Enumerable.Repeat(5, _model.MaxPositionEmbeddings + 1).ToArray();
        var e = Assert.Throws<ArgumentException>(() => new TextGenerator(_model, _tokenizer).GenerateFromIds(new[] { prompt }, new GenerationOptions()));
        Assert.Contains("max_position_embeddings", e.Message);
    }

    [Fact]
    public void Generation_ends_at_the_context_limit()
    {
        var prompt = Enumerable.Repeat(5, _model.MaxPositionEmbeddings - 3).ToArray();
        var result = new TextGenerator(_model, _tokenizer).GenerateFromIds(new[] { prompt }, new GenerationOptions { MaxNewTokens = 50 })[0];
        Assert.Equal(3, result.TokenIds.Count);
        Assert.Equal(FinishReason.Length, result.FinishReason);
    }
}
