using static TorchSharp.torch;

namespace LoraMixer.Data;

/// <summary>
/// A right-padded batch for next-token training. Position t of <see cref="TargetIds"/> is the token the model
/// should predict after reading <see cref="InputIds"/>[..t]; <see cref="TargetMask"/> says which of those count.
/// Disposing the batch frees its tensors; like a module's output they also belong to the dispose scope that was
/// open when the batch was collated, so collate inside the step's scope (or dispose the batch) to hold memory steady.
/// </summary>
public sealed class TrainingBatch : IDisposable
{
    internal TrainingBatch(Tensor inputIds, Tensor attentionMask, Tensor targetIds, Tensor targetMask, Tensor taskIds, int tokenCount)
    {
        InputIds = inputIds;
        AttentionMask = attentionMask;
        TargetIds = targetIds;
        TargetMask = targetMask;
        TaskIds = taskIds;
        TokenCount = tokenCount;
    }

    /// <summary>Token ids [B, T], int64, right-padded with the pad id.</summary>
    public Tensor InputIds { get; }

    /// <summary>[B, T] int64: 1 on real tokens, 0 on padding.</summary>
    public Tensor AttentionMask { get; }

    /// <summary>[B, T] int64: the input shifted left by one; the pad id where there is no next token.</summary>
    public Tensor TargetIds { get; }

    /// <summary>[B, T] float32: 1 where <see cref="TargetIds"/> is a token the loss is computed on, else 0.</summary>
    public Tensor TargetMask { get; }

    /// <summary>[B] int64: each example's task index, -1 for none.</summary>
    public Tensor TaskIds { get; }

    /// <summary>Number of target tokens (the sum of <see cref="TargetMask"/>).</summary>
    public int TokenCount { get; }

    /// <summary>Number of examples (B).</summary>
    public int BatchSize => (int)InputIds.shape[0];

    /// <summary>Padded length (T).</summary>
    public int SequenceLength => (int)InputIds.shape[1];

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        TargetIds.Dispose();
        TargetMask.Dispose();
        TaskIds.Dispose();
    }
}
