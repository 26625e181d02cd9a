namespace LoraMixer.Data;

/// <summary>A training record as token ids, ready for <see cref="BatchCollator"/>.</summary>
/// <param name="InputIds">BOS (when the tokenizer adds one), prompt, response and EOS ids, truncated to the maximum length.</param>
/// <param name="LossMask">Per token, whether the model is trained to predict it: the response tokens and EOS, or for a text record every token after BOS. Never true at position 0.</param>
/// <param name="TaskIndex">Index of the record's task in the encoder's task list; -1 when there is none.</param>
/// <param name="Line">The record's 1-based line in its file, for error messages.</param>
public sealed record EncodedExample(int[] InputIds, bool[] LossMask, int TaskIndex, int Line)
{
    /// <summary>Number of tokens.</summary>
    public int Length => InputIds.Length;

    /// <summary>Number of tokens the loss is computed on.</summary>
    public int TargetCount => LossMask.Count(m => m);
}
