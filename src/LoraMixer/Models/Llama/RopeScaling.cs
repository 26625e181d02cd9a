namespace LoraMixer.Models.Llama;

/// <summary>
/// The <c>rope_scaling</c> entry of a Hugging Face config: <c>linear</c> (positions divided by
/// <see cref="Factor"/>) or <c>llama3</c> (frequency-dependent scaling of Llama 3.1).
/// </summary>
public sealed record RopeScaling(
    string Type,
    double Factor,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192)
{
    /// <summary>The <c>rope_type</c> values this implementation applies (besides <c>default</c>, no scaling).</summary>
    public const string SupportedTypes = "linear, llama3";
}
