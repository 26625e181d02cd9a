namespace LoraMixer.Evaluation;

/// <summary>A multiple-choice question (ARC, MedQA).</summary>
/// <param name="Id">The file's id, or "row N" (its position among the file's examples) when it has none.</param>
/// <param name="Question">The question stem.</param>
/// <param name="Labels">The option labels as in the file ("A".."E" or "1".."4").</param>
/// <param name="Choices">The option texts, parallel to <paramref name="Labels"/>.</param>
/// <param name="Gold">Index of the correct option.</param>
public sealed record MultipleChoiceExample(string Id, string Question, IReadOnlyList<string> Labels, IReadOnlyList<string> Choices, int Gold);
