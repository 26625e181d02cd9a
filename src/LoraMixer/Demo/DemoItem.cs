namespace LoraMixer.Demo;

/// <summary>One generated demo question with its answer.</summary>
/// <param name="Task">The task's name.</param>
/// <param name="Prompt">The prompt, "Q: &lt;input&gt;\nA:".</param>
/// <param name="Answer">The expected answer, without the leading space and trailing newline of the response.</param>
public sealed record DemoItem(string Task, string Prompt, string Answer)
{
    /// <summary>The text a model should generate after <see cref="Prompt"/>: " &lt;answer&gt;\n".</summary>
    public string Response => DemoSuite.FormatResponse(Answer);
}
