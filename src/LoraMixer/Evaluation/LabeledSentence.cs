namespace LoraMixer.Evaluation;

/// <summary>A sentence with a binary label (SST-2: 1 = positive; CoLA: 1 = acceptable).</summary>
/// <param name="Sentence">The text as in the file.</param>
/// <param name="Label">0 or 1.</param>
public sealed record LabeledSentence(string Sentence, int Label);
