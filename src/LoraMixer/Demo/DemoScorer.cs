using System.Diagnostics;
using LoraMixer.Generation;
using LoraMixer.Models;
using LoraMixer.Tokenization;

namespace LoraMixer.Demo;

/// <summary>Scores a model on demo items: greedy answers up to the first newline, exact match.</summary>
public static class DemoScorer
{
    /// <summary>Accuracy in percent over <paramref name="items"/>, each item's correctness, generated tokens and seconds taken.</summary>
    public static (double Accuracy, bool[] Correct, long Tokens, double Seconds) Score(ICausalLM model, ITokenizer tokenizer, IReadOnlyList<DemoItem> items)
    {
        var clock = Stopwatch.StartNew();
        var generator = new TextGenerator(model, tokenizer, ModelStructure.EosTokenIds(model));
        var options = new GenerationOptions { MaxNewTokens = 16, StopStrings = new[] { "\n" } };
        var outputs = generator.Generate(items.Select(i => i.Prompt).ToArray(), options);
        var correct = items.Select((item, i) => DemoSuite.IsCorrect(item, outputs[i].Text)).ToArray();
        return (100.0 * correct.Count(c => c) / Math.Max(1, items.Count), correct, outputs.Sum(o => (long)o.TokenIds.Count), clock.Elapsed.TotalSeconds);
    }
}
