using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoraMixer.Reporting;

/// <summary>
/// The loss curves of one <c>train_log.jsonl</c>: training loss per step line and <c>eval_loss</c> per eval
/// line. Unreadable lines (a half-written last line) and other keys are skipped; null or "NaN" reads as NaN.
/// </summary>
/// <param name="Steps">Step of each training-loss point.</param>
/// <param name="Loss">Training loss at each of <paramref name="Steps"/>.</param>
/// <param name="EvalSteps">Step of each eval point.</param>
/// <param name="EvalLoss">Eval loss at each of <paramref name="EvalSteps"/>.</param>
public sealed record LossCurves(double[] Steps, double[] Loss, double[] EvalSteps, double[] EvalLoss)
{
    /// <summary>Reads <paramref name="path"/>; a missing file gives empty curves.</summary>
    public static LossCurves Read(string path)
    {
        var (steps, loss, evalSteps, evalLoss) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
        if (!File.Exists(path)) return new LossCurves([], [], [], []);
        foreach (var line in File.ReadLines(path))
        {
            JsonObject? o;
            try { o = JsonNode.Parse(line) as JsonObject; }
            catch (JsonException) { continue; }
            if (o is null || Number(o, "step") is not { } step) continue;
            if (o["eval"] is JsonObject eval)
            {
                if (Number(eval, "eval_loss") is not { } e) continue;
                evalSteps.Add(step);
                evalLoss.Add(e);
            }
            else if (Number(o, "loss") is { } l)
            {
                steps.Add(step);
                loss.Add(l);
            }
        }
        return new LossCurves(steps.ToArray(), loss.ToArray(), evalSteps.ToArray(), evalLoss.ToArray());
    }

    /// <summary>
    /// A trailing moving average of <paramref name="values"/> over <paramref name="window"/> points (NaN
    /// points are left out of the mean), to show the trend of a noisy loss.
    /// </summary>
    public static double[] Smooth(double[] values, int window)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        var smooth = new double[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            double sum = 0;
            int count = 0;
            for (int j = Math.Max(0, i - window + 1); j <= i; j++)
            {
                if (!double.IsFinite(values[j])) continue;
                sum += values[j];
                count++;
            }
            smooth[i] = count > 0 ? sum / count : double.NaN;
        }
        return smooth;
    }

    // A number, null (how TrainingLog writes non-finite values) or a string such as "NaN"; a missing key or another type is absent.
    private static double? Number(JsonObject o, string key) => !o.TryGetPropertyValue(key, out var node) ? null : node switch
    {
        null => double.NaN,
        JsonValue v when v.TryGetValue(out double d) => d,
        JsonValue v when v.TryGetValue(out string? s) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : double.NaN,
        _ => null,
    };
}
