using TorchSharp;

namespace LoraMixer.IO;

/// <summary>
/// The weights of a Hugging Face model folder: <c>model.safetensors</c>, or shards listed in
/// <c>model.safetensors.index.json</c> (STUB: to be implemented by the IO work).
/// </summary>
public sealed class SafeTensorsCheckpoint : IDisposable
{
    private SafeTensorsCheckpoint() { }

    /// <summary>Opens the weights of <paramref name="modelDir"/>.</summary>
    public static SafeTensorsCheckpoint Open(string modelDir) => throw new NotImplementedException();

    /// <summary>All tensor names.</summary>
    public IReadOnlyCollection<string> Names => throw new NotImplementedException();

    /// <summary>True when the checkpoint holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => throw new NotImplementedException();

    /// <summary>Shape of a tensor without reading it.</summary>
    public long[] Shape(string name) => throw new NotImplementedException();

    /// <summary>Reads a tensor onto the CPU (float types as float32).</summary>
    public torch.Tensor Read(string name) => throw new NotImplementedException();

    /// <inheritdoc />
    public void Dispose() { }
}
