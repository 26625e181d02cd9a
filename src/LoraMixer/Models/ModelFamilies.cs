using LoraMixer.Errors;
using LoraMixer.IO;
using LoraMixer.Models.Llama;
using LoraMixer.Models.Mamba;

namespace LoraMixer.Models;

/// <summary>The supported model families, one registration line each, and the choice of family for a model folder.</summary>
public static class ModelFamilies
{
    /// <summary>Every supported family.</summary>
    public static readonly IReadOnlyList<IModelFamily> All = new IModelFamily[]
    {
        LlamaFamily.Instance,
        MambaFamily.Instance,
    };

    /// <summary>
    /// The family that loads the model in <paramref name="modelDir"/>, by the <c>architectures</c> (or else
    /// <c>model_type</c>) of its config.json; an unknown one is an error listing what is supported.
    /// </summary>
    public static IModelFamily ForModelFolder(string modelDir)
    {
        if (!Directory.Exists(modelDir))
            throw new ModelFormatException($"model folder {modelDir} does not exist");
        var (json, file) = HfConfigFile.Read(modelDir);
        var (architecture, modelType) = HfConfigFile.Identify(json);
        var family = architecture is not null
            ? All.FirstOrDefault(f => f.Architectures.Contains(architecture))
            : All.FirstOrDefault(f => modelType is not null && f.ModelTypes.Contains(modelType));
        if (family is not null) return family;
        string named = (architecture, modelType) switch
        {
            (null, null) => "neither 'architectures' nor 'model_type' is set",
            (null, _) => $"model_type '{modelType}' is not supported yet",
            (_, null) => $"architecture '{architecture}' is not supported yet",
            _ => $"architecture '{architecture}' (model_type '{modelType}') is not supported yet",
        };
        throw new ModelFormatException($"{file}: {named}; {Supported}");
    }

    /// <summary>"supported: …" listing every family's architectures.</summary>
    public static string Supported =>
        "supported: " + string.Join("; ", All.Select(f => $"{f.Name} ({string.Join(", ", f.Architectures)})"));
}
