namespace LoraMixer.Experiments;

/// <summary>A method an experiment can run: its id in recipes, its table label and its table (main or ablation).</summary>
/// <param name="Id">Recipe name, e.g. <c>mixer-joint</c>.</param>
/// <param name="Label">Table label, e.g. "LoRA-Mixer (joint)".</param>
/// <param name="Group">"main" or "ablation".</param>
/// <param name="Description">One line on what it is.</param>
public sealed record ExperimentMethod(string Id, string Label, string Group, string Description)
{
    /// <summary>True when the method builds on the stage-1 experts.</summary>
    public bool NeedsExperts => Id is not ("base" or "multitask" or "mixlora");
}
