using System.Diagnostics;
using System.Text.Json;
using LoraMixer.Evaluation;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using static TorchSharp.torch;

namespace LoraMixer.Bench;

/// <summary>
/// Log-likelihood scoring speed as in multiple-choice benchmarks (MedQA, ARC): questions with a long shared
/// context and 4 short choices, scored with the shared prefix computed once against every sequence run whole.
/// One JSON line.
/// </summary>
internal static class LoglikelihoodBenchmark
{
    public static int Run(string[] args)
    {
        var options = new BenchArgs(args);
        string dir = options.Required("model");
        int questions = options.Int("questions", 32);
        int contextWords = options.Int("context-words", 60);
        int batchSize = options.Int("batch-size", 8);
        int threads = options.Int("threads", 0);
        if (threads > 0) set_num_threads(threads);

        using var model = ModelLoader.LoadCausalLM(dir);
        var tokenizer = TokenizerLoader.Load(dir);
        var random = new Random(0);
        string[] words = { "the", "patient", "was", "given", "a", "small", "dose", "of", "water", "after", "which", "she", "felt", "better", "and", "slept" };
        var requests = new List<LoglikelihoodRequest>();
        for (int q = 0; q < questions; q++)
        {
            string context = "Question: " + string.Join(' ', Enumerable.Range(0, contextWords).Select(_ => words[random.Next(words.Length)])) + "\nAnswer:";
            foreach (var choice in new[] { " water", " a small dose", " sleep", " the patient" }) requests.Add(new LoglikelihoodRequest(context, choice));
        }

        double Measure(bool share)
        {
            var scorer = new LoglikelihoodScorer(model, tokenizer, batchSize, sharePrefix: share);
            scorer.Score(requests.Take(batchSize).ToArray()); // warm-up
            var clock = Stopwatch.StartNew();
            scorer.Score(requests);
            return requests.Count / clock.Elapsed.TotalSeconds;
        }
        double whole = Measure(false), shared = Measure(true);
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["bench"] = "loglikelihood",
            ["model"] = Path.GetFileName(Path.TrimEndingDirectorySeparator(dir)),
            ["requests"] = requests.Count,
            ["context_words"] = contextWords,
            ["threads"] = get_num_threads(),
            ["whole_requests_per_s"] = Math.Round(whole, 1),
            ["shared_prefix_requests_per_s"] = Math.Round(shared, 1),
            ["speedup"] = Math.Round(shared / whole, 2),
        }));
        return 0;
    }
}
