using static TorchSharp.torch;

namespace LoraMixer.Models.Modules;

/// <summary>
/// The normalised hidden state entering a block's attention (Mamba: its mixer), handed to an observer such
/// as a LoRA-Mixer router, with what the observer needs to stay causal across decoding steps.
/// </summary>
/// <param name="Hidden">Normalised hidden states [B, T, hidden] of the new positions.</param>
/// <param name="TokenMask">[B, T]: 1 for real tokens, 0 for padding; null when nothing is padded.</param>
/// <param name="Cache">The inference cache of this forward pass (null in training and full recomputation).</param>
public sealed record BlockInput(Tensor Hidden, Tensor? TokenMask, IInferenceCache? Cache);
