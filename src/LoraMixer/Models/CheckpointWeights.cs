using LoraMixer.Errors;
using LoraMixer.IO;
using static TorchSharp.torch;

namespace LoraMixer.Models;

/// <summary>Checks a checkpoint against the tensors a config implies, and copies them into a module.</summary>
public static class CheckpointWeights
{
    private const int Listed = 3;

    /// <summary>
    /// Checks before anything is allocated that the weights match the config exactly: every expected tensor
    /// present with its shape, and no other tensor except those <paramref name="ignorable"/> accepts (e.g.
    /// rotary <c>inv_freq</c> buffers). Names the missing, mis-shaped or unknown tensors.
    /// </summary>
    public static void Check(IEnumerable<(string Name, long[] Shape)> expected, SafeTensorsCheckpoint checkpoint, string source,
        Func<string, bool> ignorable)
    {
        var wanted = expected.ToList();
        var missing = wanted.Where(w => !checkpoint.Contains(w.Name)).Select(w => w.Name).ToList();
        if (missing.Count > 0) throw Missing(source, missing);
        foreach (var (name, shape) in wanted)
        {
            long[] actual = checkpoint.Shape(name);
            if (!actual.SequenceEqual(shape)) throw Misshaped(source, name, actual, shape);
        }
        var known = wanted.Select(w => w.Name).ToHashSet(StringComparer.Ordinal);
        var extra = checkpoint.Names.Where(n => !known.Contains(n) && !ignorable(n)).Order(StringComparer.Ordinal).ToList();
        if (extra.Count > 0)
            throw new ModelFormatException(
                $"{source}: {Names("tensor", extra)} {(extra.Count == 1 ? "is" : "are")} not part of a model with this config.json; check num_hidden_layers and the other sizes there");
    }

    /// <summary>
    /// Copies every parameter of <paramref name="module"/> from the checkpoint tensor of the same name and
    /// freezes it; a tensor holding NaN or infinity is an error naming it.
    /// </summary>
    public static void Load(nn.Module module, SafeTensorsCheckpoint checkpoint, string source)
    {
        using var noGrad = no_grad();
        foreach (var (name, parameter) in module.named_parameters())
        {
            if (!checkpoint.Contains(name)) throw Missing(source, new[] { name });
            using var scope = NewDisposeScope();
            long[] shape = checkpoint.Shape(name);
            if (!shape.SequenceEqual(parameter.shape)) throw Misshaped(source, name, shape, parameter.shape);
            var value = checkpoint.Read(name);
            if (!value.isfinite().all().item<bool>())
                throw new ModelFormatException($"{source}: tensor '{name}' holds NaN or infinite values; the weights are corrupt, re-download or re-export them");
            parameter.copy_(value);
            parameter.requires_grad = false;
        }
    }

    private static ModelFormatException Missing(string source, IReadOnlyList<string> names) =>
        new($"{source}: {Names("tensor", names)} {(names.Count == 1 ? "is" : "are")} missing from the weights; the folder does not match its config.json");

    private static ModelFormatException Misshaped(string source, string name, long[] actual, long[] implied) =>
        new($"{source}: tensor '{name}' has shape [{string.Join(", ", actual)}] but config.json implies [{string.Join(", ", implied)}]");

    private static string Names(string noun, IReadOnlyList<string> names)
    {
        string quoted = string.Join(", ", names.Take(Listed).Select(n => $"'{n}'"));
        return names.Count == 1 ? $"{noun} {quoted}"
            : names.Count <= Listed ? $"{noun}s {quoted}"
            : $"{noun}s {quoted} and {names.Count - Listed} more";
    }
}
