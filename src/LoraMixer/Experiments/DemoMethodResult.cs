namespace LoraMixer.Experiments;

/// <summary>One row of the demo table: a method's accuracy (%) per task, its trainable parameters and generation speed.</summary>
public sealed record DemoMethodResult(string Method, IReadOnlyDictionary<string, double> Accuracy, long TrainableParameters, double TokensPerSecond)
{
    /// <summary>Mean accuracy over tasks.</summary>
    public double Average => Accuracy.Count == 0 ? double.NaN : Accuracy.Values.Average();
}
