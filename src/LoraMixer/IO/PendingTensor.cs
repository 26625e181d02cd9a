using TorchSharp;

namespace LoraMixer.IO;

/// <summary>
/// A tensor to be written by <see cref="SafeTensorsWriter.WriteStreaming"/>: declared up front so the
/// header can be written first, produced only when its bytes are due.
/// </summary>
internal sealed record PendingTensor(string Name, SafeTensorsDType DType, long[] Shape, Func<torch.Tensor> Produce);
