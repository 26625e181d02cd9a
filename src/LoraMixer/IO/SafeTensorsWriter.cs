using TorchSharp;

namespace LoraMixer.IO;

/// <summary>Writes safetensors files (STUB: to be implemented by the IO work).</summary>
public static class SafeTensorsWriter
{
    /// <summary>
    /// Writes float32/int64/int32 tensors (name order kept) atomically: a temporary file in the same
    /// folder, then a rename.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null) => throw new NotImplementedException();
}
