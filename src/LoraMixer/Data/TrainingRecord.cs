namespace LoraMixer.Data;

/// <summary>
/// One line of a training file: either a <see cref="Prompt"/>/<see cref="Response"/> pair (loss on the response
/// only) or a plain <see cref="Text"/> (loss on every token), optionally labelled with a <see cref="Task"/>.
/// </summary>
/// <param name="Prompt">Context the model reads but is not trained to produce; null for none.</param>
/// <param name="Response">What the model learns to produce after the prompt; null for a text record.</param>
/// <param name="Text">A whole document to learn; null for a prompt/response record.</param>
/// <param name="Task">The task (expert) this record belongs to; null when unlabelled.</param>
/// <param name="Source">The file the record came from, for error messages.</param>
/// <param name="Line">The 1-based line in <paramref name="Source"/>.</param>
public sealed record TrainingRecord(string? Prompt, string? Response, string? Text, string? Task, string Source = "", int Line = 0)
{
    /// <summary>"file:line", as error messages name a record.</summary>
    public string Location => $"{Source}:{Line}";
}
