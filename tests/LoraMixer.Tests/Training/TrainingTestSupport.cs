using System.Text.Json;
using LoraMixer.IO;

namespace LoraMixer.Tests.Training;

/// <summary>
/// The trainer seeds torch's global RNG, which other tests running at the same time would disturb, so
/// tests that train run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TrainingCollection
{
    public const string Name = "Training (global torch RNG)";
}

/// <summary>Calls back synchronously, unlike <see cref="Progress{T}"/>.</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

internal static class TrainingFiles
{
    public static List<JsonElement> ReadLog(string outputDir) =>
        File.ReadAllLines(Path.Combine(outputDir, "train_log.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    public static List<int> StepLines(List<JsonElement> log) =>
        log.Where(l => !l.TryGetProperty("eval", out _)).Select(l => l.GetProperty("step").GetInt32()).ToList();

    public static List<int> EvalLines(List<JsonElement> log) =>
        log.Where(l => l.TryGetProperty("eval", out _)).Select(l => l.GetProperty("step").GetInt32()).ToList();

    /// <summary>Every tensor of a safetensors file as float arrays (ints widened).</summary>
    public static Dictionary<string, float[]> ReadAll(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        var result = new Dictionary<string, float[]>();
        foreach (string name in file.Tensors.Keys)
        {
            using var t = file.Read(name);
            using var f = t.to(TorchSharp.torch.float32);
            result[name] = f.data<float>().ToArray();
        }
        return result;
    }
}
