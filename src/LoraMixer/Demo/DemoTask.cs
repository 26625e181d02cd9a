namespace LoraMixer.Demo;

/// <summary>One task of the built-in demo suite.</summary>
/// <param name="Name">Short name, used as the task label and expert name (e.g. "add").</param>
/// <param name="Description">What the task asks, with an example.</param>
public sealed record DemoTask(string Name, string Description);
