namespace LoraMixer.Evaluation;

/// <summary>One GSM8K problem.</summary>
/// <param name="Question">The word problem.</param>
/// <param name="Answer">The reference rationale ending in <c>#### N</c> (calculator annotations <c>&lt;&lt;a*b=c&gt;&gt;</c> kept).</param>
/// <param name="Gold">The final answer after <c>####</c>, normalised by <see cref="Gsm8kAnswer.Normalize"/>.</param>
public sealed record Gsm8kExample(string Question, string Answer, string Gold);
