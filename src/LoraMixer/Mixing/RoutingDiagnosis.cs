using LoraMixer.Data;
using LoraMixer.Generation;
using LoraMixer.Models;
using LoraMixer.Tokenization;
using LoraMixer.Training;
using static TorchSharp.torch;

namespace LoraMixer.Mixing;

/// <summary>
/// Measures whether a mixer's routers find the right expert, on labelled prompt/response data whose tasks
/// name experts: per router the share of prompt and of response tokens routed (top-1) to their task's
/// expert, and a linear probe that predicts the task from exactly what the router reads (fitted on one half
/// of the samples, scored on the other); for the whole mixer, greedy exact match and response loss with
/// the learned top-k routing against routing forced to each sample's own expert.
/// </summary>
public static class RoutingDiagnosis
{
    /// <summary>Response tokens per sample kept for the response probe (bounds its size).</summary>
    public const int ProbeTokensPerSample = 8;

    /// <summary>Runs the diagnosis; the mixer's routing is left at its inference routing.</summary>
    public static RoutingDiagnosisResult Run(LoraMixerModel mixer, ITokenizer tokenizer, IReadOnlyList<TrainingRecord> records,
        int batchSize, int maxLength, IProgress<string>? progress = null)
    {
        var tasks = records.Select(r => r.Task).OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        var expertOfTask = MixerTrainingJob.ExpertOfTask(mixer, tasks);
        var usable = records.Where(r => r.Prompt is { Length: > 0 } && r.Response is not null && r.Task is { } t && expertOfTask[Array.IndexOf(tasks, t)] >= 0).ToArray();
        if (usable.Length < 2)
            throw new Errors.DataFormatException(
                $"a routing diagnosis needs prompt/response lines whose \"task\" names an expert (experts: {string.Join(", ", mixer.ExpertNames)}; " +
                $"tasks in the data: {(tasks.Length > 0 ? string.Join(", ", tasks) : "none")})");
        var encoder = new ExampleEncoder(tokenizer, maxLength, tasks);
        var examples = usable.Select(encoder.Encode).ToArray();
        int routers = mixer.Slots.Count;

        progress?.Report("routing with the learned routers");
        var prompt = new double[routers, 2];   // [router, (hits, tokens)]
        var response = new double[routers, 2];
        var lastPrompt = Enumerable.Range(0, routers).Select(_ => new List<Tensor>()).ToArray();
        var responseFeatures = Enumerable.Range(0, routers).Select(_ => new List<Tensor>()).ToArray();
        var lastPromptSample = new List<int>();
        var responseSample = new List<int>();
        double learnedLoss = 0, forcedLoss = 0, lossTokens = 0;
        mixer.SetRouting(mixer.Config.InferenceRouting);
        mixer.SetRecording(true);
        mixer.SetFeatureRecording(true);
        try
        {
            ForEachBatch(mixer, examples, batchSize, (start, chunk, batch) =>
            {
                mixer.SetDecisionPositions(MixerTrainingJob.PromptEnds(batch));
                learnedLoss += ResponseLoss(mixer, batch);
                lossTokens += batch.TokenCount;
                var probabilities = mixer.TakeRecordedProbabilities();
                var features = mixer.Slots.Select(s => s.TakeRecordedFeatures().Single()).ToArray();
                try
                {
                    for (int r = 0; r < routers; r++)
                    {
                        var top1 = probabilities[r].argmax(-1).cpu();
                        var top = top1.data<long>().ToArray();
                        long time = top1.shape[1];
                        var f = features[r].cpu();
                        for (int b = 0; b < chunk.Length; b++)
                        {
                            var e = chunk[b];
                            int expert = expertOfTask[e.TaskIndex];
                            int firstResponse = Array.IndexOf(e.LossMask, true);
                            int kept = 0;
                            for (int t = 0; t < e.Length; t++)
                            {
                                bool hit = top[b * time + t] == expert;
                                var counts = e.LossMask[t] ? response : prompt;
                                counts[r, 0] += hit ? 1 : 0;
                                counts[r, 1] += 1;
                                if (e.LossMask[t] && kept < ProbeTokensPerSample)
                                {
                                    responseFeatures[r].Add(f[b, t].clone().DetachFromDisposeScope());
                                    if (r == 0) responseSample.Add(start + b);
                                    kept++;
                                }
                            }
                            if (firstResponse > 0)
                            {
                                lastPrompt[r].Add(f[b, firstResponse - 1].clone().DetachFromDisposeScope());
                                if (r == 0) lastPromptSample.Add(start + b);
                            }
                        }
                    }
                }
                finally
                {
                    foreach (var p in probabilities) p.Dispose();
                    foreach (var f in features) f.Dispose();
                }
            });
        }
        finally
        {
            mixer.SetRecording(false);
            mixer.SetFeatureRecording(false);
            mixer.SetDecisionPositions(null);
        }

        progress?.Report("routing forced to each sample's expert");
        mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
        try
        {
            ForEachBatch(mixer, examples, batchSize, (_, chunk, batch) =>
            {
                mixer.SetHardExperts(tensor(chunk.Select(e => (long)expertOfTask[e.TaskIndex]).ToArray(), device: mixer.Model.Device));
                forcedLoss += ResponseLoss(mixer, batch);
            });
        }
        finally
        {
            mixer.SetHardExperts(null);
            mixer.SetRouting(mixer.Config.InferenceRouting);
        }

        progress?.Report("exact match (greedy generation)");
        var perTask = new Dictionary<string, (double Learned, double Forced)>();
        double learnedHits = 0, forcedHits = 0;
        foreach (var task in tasks)
        {
            var items = usable.Where(r => r.Task == task).ToArray();
            if (items.Length == 0) continue;
            int expert = expertOfTask[Array.IndexOf(tasks, task)];
            double learned = ExactMatches(mixer, tokenizer, items, null);
            double forced = ExactMatches(mixer, tokenizer, items, expert);
            learnedHits += learned;
            forcedHits += forced;
            perTask[task] = (learned / items.Length, forced / items.Length);
        }

        progress?.Report("linear probes");
        var layers = new List<LayerDiagnosis>();
        for (int r = 0; r < routers; r++)
        {
            double probeLast = Probe(lastPrompt[r], lastPromptSample, examples, tasks.Length);
            double probeResponse = Probe(responseFeatures[r], responseSample, examples, tasks.Length);
            layers.Add(new LayerDiagnosis(mixer.Slots[r].Name, Share(prompt, r), Share(response, r), probeLast, probeResponse));
            foreach (var t in lastPrompt[r]) t.Dispose();
            foreach (var t in responseFeatures[r]) t.Dispose();
        }
        return new RoutingDiagnosisResult(tasks, layers, usable.Length, learnedHits / usable.Length, forcedHits / usable.Length,
            learnedLoss / Math.Max(1, lossTokens), forcedLoss / Math.Max(1, lossTokens), perTask);
    }

    /// <summary>Whether <paramref name="generated"/> matches <paramref name="response"/>: their first non-empty lines, trimmed.</summary>
    public static bool IsExactMatch(string generated, string response) =>
        string.Equals(FirstLine(generated), FirstLine(response), StringComparison.Ordinal);

    private static string FirstLine(string text) =>
        text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? "";

    // Runs body over batches of the examples without gradients, each batch in its own dispose scope.
    private static void ForEachBatch(LoraMixerModel mixer, IReadOnlyList<EncodedExample> examples, int batchSize,
        Action<int, EncodedExample[], TrainingBatch> body)
    {
        using var noGrad = no_grad();
        for (int start = 0; start < examples.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var chunk = examples.Skip(start).Take(batchSize).ToArray();
            using var batch = BatchCollator.Collate(chunk, 0, mixer.Model.Device);
            body(start, chunk, batch);
        }
    }

    // Summed cross-entropy of the batch's response tokens.
    private static double ResponseLoss(LoraMixerModel mixer, TrainingBatch batch)
    {
        var logits = mixer.Model.Forward(batch.InputIds, batch.AttentionMask);
        return CausalLmObjective.MaskedCrossEntropy(logits, batch.TargetIds, batch.TargetMask).item<float>() * batch.TokenCount;
    }

    private static double Share(double[,] counts, int r) => counts[r, 1] > 0 ? counts[r, 0] / counts[r, 1] : double.NaN;

    // Greedy answers up to the response's length (+4 tokens) or the first newline after text; the count of matches.
    private static double ExactMatches(LoraMixerModel mixer, ITokenizer tokenizer, IReadOnlyList<TrainingRecord> items, int? forcedExpert)
    {
        int longest = items.Max(i => tokenizer.Encode(i.Response!, addBos: false).Count);
        var generator = new TextGenerator(mixer.Model, tokenizer, ModelStructure.EosTokenIds(mixer.Model));
        var options = new GenerationOptions { MaxNewTokens = longest + 4 };
        double hits = 0;
        const int chunk = 32;
        for (int start = 0; start < items.Count; start += chunk)
        {
            var part = items.Skip(start).Take(chunk).ToArray();
            if (forcedExpert is int e)
            {
                mixer.SetRouting(new RoutingSettings(RoutingMode.Hard));
                mixer.SetHardExperts(tensor(new long[] { e }, device: mixer.Model.Device));
            }
            try
            {
                var outputs = generator.Generate(part.Select(i => i.Prompt!).ToArray(), options);
                hits += part.Where((item, i) => IsExactMatch(outputs[i].Text, item.Response!)).Count();
            }
            finally
            {
                mixer.SetHardExperts(null);
                mixer.SetRouting(mixer.Config.InferenceRouting);
            }
        }
        return hits;
    }

    // Fits on samples with an even index, scores on the odd ones (whole samples, so no token leaks across).
    private static double Probe(IReadOnlyList<Tensor> features, IReadOnlyList<int> sampleOf, IReadOnlyList<EncodedExample> examples, int classes)
    {
        if (features.Count == 0) return double.NaN;
        using var scope = NewDisposeScope();
        var train = Enumerable.Range(0, features.Count).Where(i => sampleOf[i] % 2 == 0).ToArray();
        var test = Enumerable.Range(0, features.Count).Where(i => sampleOf[i] % 2 == 1).ToArray();
        if (train.Length == 0 || test.Length == 0) return double.NaN;
        Tensor Stack(int[] rows) => stack(rows.Select(i => features[i]).ToArray());
        Tensor Labels(int[] rows) => tensor(rows.Select(i => (long)examples[sampleOf[i]].TaskIndex).ToArray());
        return LinearProbe.Accuracy(Stack(train), Labels(train), Stack(test), Labels(test), classes);
    }
}
