using LoraMixer.Models.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Models;

/// <summary>What generation, scoring and training need from a causal language model.</summary>
public interface ICausalLM : IDisposable
{
    /// <summary>The family the model belongs to: its targets, router attachment and description.</summary>
    IModelFamily Family { get; }

    /// <summary>Device holding the weights.</summary>
    Device Device { get; }

    /// <summary>Size of the output distribution.</summary>
    int VocabSize { get; }

    /// <summary>Longest sequence the model accepts.</summary>
    int MaxPositionEmbeddings { get; }

    /// <summary>An empty cache for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> positions.</summary>
    IInferenceCache CreateCache(long batch, int capacity);

    /// <summary>
    /// Logits [B, T, vocab] (or [B, 1, vocab] with <paramref name="lastPositionOnly"/>) for ids [B, T]
    /// following whatever <paramref name="cache"/> holds; <paramref name="attentionMask"/> [B, past + T]
    /// is 1 for real tokens and 0 for padding.
    /// </summary>
    Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, IInferenceCache? cache = null, bool lastPositionOnly = false);
}
