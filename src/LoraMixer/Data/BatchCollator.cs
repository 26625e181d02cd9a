using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Data;

/// <summary>Pads encoded examples into a <see cref="TrainingBatch"/>.</summary>
public static class BatchCollator
{
    /// <summary>
    /// Right-pads <paramref name="examples"/> to the longest one and builds the shifted targets: target t is token
    /// t+1, counted when that token's loss mask is set.
    /// </summary>
    /// <param name="examples">At least one example.</param>
    /// <param name="padId">Id written into padding (the tokenizer's pad id, or EOS when it has none).</param>
    /// <param name="device">Where the tensors go.</param>
    public static TrainingBatch Collate(IReadOnlyList<EncodedExample> examples, int padId, Device device)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(device);
        if (examples.Count == 0) throw new ArgumentException("A batch needs at least one example.", nameof(examples));
        int batch = examples.Count;
        int length = examples.Max(e => e.Length);
        if (length == 0) throw new ArgumentException("Every example in the batch is empty.", nameof(examples));

        var input = new long[batch * length];
        var attention = new long[batch * length];
        var targets = new long[batch * length];
        var targetMask = new float[batch * length];
        var tasks = new long[batch];
        Array.Fill(input, padId);
        Array.Fill(targets, padId);
        int tokenCount = 0;
        for (int b = 0; b < batch; b++)
        {
            var e = examples[b];
            if (e.LossMask.Length != e.InputIds.Length)
                throw new ArgumentException($"Example {b} (line {e.Line}) has {e.InputIds.Length} ids but {e.LossMask.Length} mask entries.", nameof(examples));
            int row = b * length;
            for (int t = 0; t < e.Length; t++)
            {
                input[row + t] = e.InputIds[t];
                attention[row + t] = 1;
                if (t + 1 < e.Length)
                {
                    targets[row + t] = e.InputIds[t + 1];
                    if (e.LossMask[t + 1])
                    {
                        targetMask[row + t] = 1f;
                        tokenCount++;
                    }
                }
            }
            tasks[b] = e.TaskIndex;
        }

        using var scope = NewDisposeScope();
        long[] shape = [batch, length];
        return new TrainingBatch(
            tensor(input, shape, ScalarType.Int64).to(device).MoveToOuterDisposeScope(),
            tensor(attention, shape, ScalarType.Int64).to(device).MoveToOuterDisposeScope(),
            tensor(targets, shape, ScalarType.Int64).to(device).MoveToOuterDisposeScope(),
            tensor(targetMask, shape, ScalarType.Float32).to(device).MoveToOuterDisposeScope(),
            tensor(tasks, [batch], ScalarType.Int64).to(device).MoveToOuterDisposeScope(),
            tokenCount);
    }
}
