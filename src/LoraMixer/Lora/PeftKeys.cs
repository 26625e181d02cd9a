using System.Text.RegularExpressions;

namespace LoraMixer.Lora;

/// <summary>
/// The tensor names of a PEFT LoRA <c>adapter_model.safetensors</c>: a module such as
/// <c>model.layers.0.self_attn.q_proj</c> (Mamba: <c>backbone.layers.0.mixer.in_proj</c>) is stored as
/// <c>base_model.model.&lt;module&gt;.lora_A.weight</c> [r, in] and <c>...lora_B.weight</c> [out, r].
/// </summary>
public static partial class PeftKeys
{
    /// <summary>The prefix PEFT puts before every module name (<c>PeftModel.base_model.model</c>).</summary>
    public const string Prefix = "base_model.model.";

    /// <summary>The part a key names: <c>lora_A</c>, <c>lora_B</c> or <c>bias</c>.</summary>
    public const string LoraA = "lora_A", LoraB = "lora_B", Bias = "bias";

    /// <summary>Key of the down projection A [r, in] of a module.</summary>
    public static string LoraAKey(string moduleName) => $"{Prefix}{moduleName}.lora_A.weight";

    /// <summary>Key of the up projection B [out, r] of a module.</summary>
    public static string LoraBKey(string moduleName) => $"{Prefix}{moduleName}.lora_B.weight";

    /// <summary>Key of a module's bias, saved when the config's <c>bias</c> is <c>all</c> or <c>lora_only</c>.</summary>
    public static string BiasKey(string moduleName) => $"{Prefix}{moduleName}.bias";

    /// <summary>
    /// Splits a PEFT key into module name and part (<see cref="LoraA"/>, <see cref="LoraB"/> or
    /// <see cref="Bias"/>). Also accepts an adapter-name segment (<c>lora_A.default.weight</c>) and the
    /// <c>base_layer.bias</c> spelling of newer PEFT. Returns null for any other key.
    /// </summary>
    public static (string Module, string Part)? Parse(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        Match match = KeyPattern().Match(key);
        if (!match.Success) return null;
        string part = match.Groups["lora"].Success ? match.Groups["lora"].Value : Bias;
        return (match.Groups["module"].Value, part);
    }

    [GeneratedRegex(@"\Abase_model\.model\.(?<module>.+?)\.(?:(?<lora>lora_[AB])(?:\.[^.]+)?\.weight|(?:base_layer\.)?bias)\z", RegexOptions.CultureInvariant)]
    private static partial Regex KeyPattern();
}
