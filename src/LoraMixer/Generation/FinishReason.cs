namespace LoraMixer.Generation;

/// <summary>Why a sequence stopped growing.</summary>
public enum FinishReason
{
    /// <summary>The model produced its end-of-sequence token.</summary>
    Eos,
    /// <summary>A stop string appeared.</summary>
    StopString,
    /// <summary>The token limit (or the model's context) was reached.</summary>
    Length,
}
