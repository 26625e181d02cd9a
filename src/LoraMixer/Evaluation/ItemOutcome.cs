namespace LoraMixer.Evaluation;

/// <summary>
/// One scored example: its position in the evaluation data, its score under the headline metric (1 correct, 0
/// wrong; pass@1 for HumanEval) and, for classification tasks, the predicted and gold labels (MCC needs both).
/// Paired comparisons of two models on the same items use these.
/// </summary>
/// <param name="Index">Index of the example among the task's examples (file order).</param>
/// <param name="Score">The example's headline score.</param>
/// <param name="Predicted">Predicted choice, for multiple-choice tasks.</param>
/// <param name="Gold">Gold choice, for multiple-choice tasks.</param>
public sealed record ItemOutcome(int Index, double Score, int? Predicted = null, int? Gold = null);
