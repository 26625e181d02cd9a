using System.CommandLine;
using LoraMixer.Lora;
using LoraMixer.Mixing;
using LoraMixer.Models;
using LoraMixer.Quantization;

namespace LoraMixer.Cli;

/// <summary>The <c>--mixer</c> / <c>--adapter</c> options of the inference commands, and applying them to a loaded model.</summary>
internal sealed class ModelAdaptation
{
    private readonly Option<string?> _mixer = new("--mixer") { Description = "LoRA-Mixer folder to run on the model (top-k routing from its config)" };
    private readonly Option<string?> _adapter = new("--adapter") { Description = "PEFT LoRA adapter folder to merge into the model" };
    private readonly Option<int?> _topKExperts = new("--top-k-experts") { Description = "With --mixer: experts per token (overrides the mixer's top_k)" };
    private readonly Option<string?> _quantize = CommonOptions.Quantize();

    /// <summary>The options to add to a command.</summary>
    public IEnumerable<Option> Options => [_mixer, _adapter, _topKExperts, _quantize];

    /// <summary>Checks the combination before anything is loaded.</summary>
    public void Validate(ParseResult result)
    {
        if (result.GetValue(_mixer) is not null && result.GetValue(_adapter) is not null)
            throw new ArgumentException("give --mixer or --adapter, not both (a mixer already holds its experts)");
        if (result.GetValue(_topKExperts) is not null && result.GetValue(_mixer) is null)
            throw new ArgumentException("--top-k-experts needs --mixer");
        Int8Quantizer.CheckMode(result.GetValue(_quantize));
    }

    /// <summary>
    /// Applies the adapter (merged) or the mixer to <paramref name="model"/>, then <c>--quantize</c>; returns the mixer to
    /// dispose, if any.
    /// </summary>
    public IDisposable? Apply(ParseResult result, ICausalLM model)
    {
        var adapted = Adapt(result, model);
        if (result.GetValue(_quantize) is "int8")
        {
            try
            {
                Console.Error.WriteLine("note: " + Int8Quantizer.Quantize(model));
            }
            catch
            {
                adapted?.Dispose();
                throw;
            }
        }
        return adapted;
    }

    private IDisposable? Adapt(ParseResult result, ICausalLM model)
    {
        Validate(result);
        if (result.GetValue(_adapter) is string adapterDir)
        {
            using var adapter = PeftAdapter.Load(adapterDir);
            AdapterInjector.Apply(model, adapter, merge: true);
            return null;
        }
        if (result.GetValue(_mixer) is not string mixerDir) return null;
        var mixer = MixerCheckpoint.Load(model, mixerDir);
        try
        {
            if (result.GetValue(_topKExperts) is int k)
                mixer.SetRouting(mixer.Config.InferenceRouting with { TopK = k });
        }
        catch (ArgumentException e)
        {
            mixer.Dispose();
            throw new ArgumentException("--top-k-experts: " + e.Message, e);
        }
        return mixer;
    }
}
