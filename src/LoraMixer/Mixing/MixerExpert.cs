namespace LoraMixer.Mixing;

/// <summary>One expert of a mixer: its name and its PEFT adapter folder (relative to the mixer folder).</summary>
public sealed record MixerExpert(string Name, string Path);
