using LoraMixer.Data;
using LoraMixer.Models;

namespace LoraMixer.Cli;

/// <summary>Parsing and sampling of the training commands' inputs: comma lists, target modules, expert names, mixed samples.</summary>
internal static class TrainingInputs
{
    /// <summary>Splits a comma-separated option value; an empty item or an empty list is an error naming the option.</summary>
    public static IReadOnlyList<string> List(string value, string option)
    {
        var items = value.Split(',', StringSplitOptions.TrimEntries);
        if (items.Length == 0 || items.Any(i => i.Length == 0))
            throw new ArgumentException($"{option} '{value}' has an empty item; write a comma-separated list like a,b,c");
        var twice = items.GroupBy(i => i, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null) throw new ArgumentException($"{option} names '{twice.Key}' twice");
        return items;
    }

    /// <summary>
    /// Target module short names, each one a linear of a block of the model in <paramref name="modelDir"/>;
    /// without a value, the LoRA-Mixer defaults of its family (q/k/v/o, or in_proj/out_proj for Mamba).
    /// </summary>
    public static IReadOnlyList<string> Targets(string? value, string modelDir)
    {
        var family = ModelFamilies.ForModelFolder(modelDir);
        if (value is null) return family.DefaultTargets;
        var targets = List(value, "--targets");
        foreach (string t in targets)
            if (!family.TargetableLinears.Contains(t))
                throw new ArgumentException($"--targets: unknown module '{t}'; a block of this model has {string.Join(", ", family.TargetableLinears)}");
        return targets;
    }

    /// <summary>An expert name becomes a folder (<c>experts/&lt;name&gt;</c>), so it is kept to letters, digits, '-', '_' and '.'.</summary>
    public static void CheckExpertName(string name, string what)
    {
        if (name.Length == 0 || name is "." or ".." || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            throw new ArgumentException($"{what} '{name}' cannot name an expert folder; use letters, digits, '-', '_' and '.'");
    }

    /// <summary>
    /// At most <paramref name="count"/> records, mixed over tasks: each task's records shuffled by
    /// <paramref name="seed"/>, then taken in turn (task order = first appearance), so every task is
    /// represented and the choice is reproducible.
    /// </summary>
    public static IReadOnlyList<TrainingRecord> MixedSample(IReadOnlyList<TrainingRecord> records, int count, int seed)
    {
        var rng = new Random(seed);
        var groups = records.GroupBy(r => r.Task ?? "", StringComparer.Ordinal).Select(g => Shuffle(g.ToArray(), rng)).ToArray();
        var sample = new List<TrainingRecord>(Math.Min(count, records.Count));
        for (int i = 0; sample.Count < count; i++)
        {
            bool any = false;
            foreach (var group in groups)
            {
                if (i >= group.Length || sample.Count >= count) continue;
                sample.Add(group[i]);
                any = true;
            }
            if (!any) break;
        }
        return sample;
    }

    /// <summary>The distinct non-null tasks of <paramref name="records"/> in order of first appearance.</summary>
    public static IReadOnlyList<string> TasksOf(IEnumerable<TrainingRecord> records) =>
        records.Where(r => r.Task is not null).Select(r => r.Task!).Distinct(StringComparer.Ordinal).ToArray();

    private static T[] Shuffle<T>(T[] items, Random rng)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
        return items;
    }
}
