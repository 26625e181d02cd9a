using System.Text.Json;
using LoraMixer.Errors;
using TorchSharp;

namespace LoraMixer.IO;

/// <summary>
/// The weights of a Hugging Face model folder: <c>model.safetensors</c>, or shards listed in
/// <c>model.safetensors.index.json</c>. Shards are opened on first use and then kept open; all members
/// are safe to call from several threads.
/// </summary>
public sealed class SafeTensorsCheckpoint : IDisposable
{
    /// <summary>File name of a single-file checkpoint.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>File name of the shard index of a sharded checkpoint.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly string _folder;
    private readonly string? _indexPath;
    private readonly Dictionary<string, string> _shardOf;
    private readonly Dictionary<string, SafeTensorsFile> _open = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private bool _disposed;

    private SafeTensorsCheckpoint(string folder, string? indexPath, Dictionary<string, string> shardOf)
    {
        _folder = folder;
        _indexPath = indexPath;
        _shardOf = shardOf;
    }

    /// <summary>Opens the weights of <paramref name="modelDir"/>.</summary>
    public static SafeTensorsCheckpoint Open(string modelDir)
    {
        ArgumentNullException.ThrowIfNull(modelDir);
        if (!Directory.Exists(modelDir))
            throw new ModelFormatException(
                File.Exists(modelDir)
                    ? $"{modelDir} is a file, not a model folder; pass the folder that holds config.json and the weights."
                    : $"Model folder {modelDir} does not exist; check the path, or download the model first.");

        string single = System.IO.Path.Combine(modelDir, SingleFileName);
        if (File.Exists(single))
        {
            SafeTensorsFile file = SafeTensorsFile.Open(single);
            var checkpoint = new SafeTensorsCheckpoint(modelDir, null,
                file.Tensors.Keys.ToDictionary(name => name, _ => SingleFileName, StringComparer.Ordinal));
            checkpoint._open.Add(SingleFileName, file);
            return checkpoint;
        }

        string index = System.IO.Path.Combine(modelDir, IndexFileName);
        if (File.Exists(index))
            return new SafeTensorsCheckpoint(modelDir, index, ReadIndex(modelDir, index));

        throw new ModelFormatException(
            $"Model folder {modelDir} has no {SingleFileName} or {IndexFileName}; download the model's safetensors weights into it (LoraMixer does not read .bin/.pt weights; convert them to safetensors first).");
    }

    private static Dictionary<string, string> ReadIndex(string folder, string index)
    {
        ModelFormatException Fail(string problem) => new(
            $"Invalid shard index {index}: {problem}. Download the model's {IndexFileName} again.");

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(index);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"Cannot read shard index {index}: {e.Message}", e);
        }

        var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using JsonDocument document = JsonDocument.Parse(bytes);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw Fail("it is not a JSON object");
            if (!document.RootElement.TryGetProperty("weight_map", out JsonElement map) || map.ValueKind != JsonValueKind.Object)
                throw Fail("it has no \"weight_map\" object mapping tensor names to shard files");
            foreach (JsonProperty entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw Fail($"weight_map entry '{SafeTensorsHeader.Printable(entry.Name)}' is not a file name string");
                string shard = entry.Value.GetString()!;
                // Shards live in the model folder itself; anything else would let an index point anywhere.
                if (shard.Length == 0 || System.IO.Path.GetFileName(shard) != shard || shard is "." or "..")
                    throw Fail($"weight_map entry '{SafeTensorsHeader.Printable(entry.Name)}' names '{SafeTensorsHeader.Printable(shard)}', which is not a plain file name in the model folder");
                if (!shardOf.TryAdd(entry.Name, shard))
                    throw Fail($"tensor '{SafeTensorsHeader.Printable(entry.Name)}' is listed twice in weight_map");
            }
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"Invalid shard index {index}: it is not valid JSON ({e.Message}). Download the model's {IndexFileName} again.", e);
        }
        catch (InvalidOperationException e)
        {
            throw new ModelFormatException($"Invalid shard index {index}: it holds a string that cannot be decoded ({e.Message}). Download the model's {IndexFileName} again.", e);
        }

        if (shardOf.Count == 0)
            throw Fail("its weight_map is empty");
        foreach (string shard in shardOf.Values.Distinct(StringComparer.Ordinal))
        {
            if (!File.Exists(System.IO.Path.Combine(folder, shard)))
                throw new ModelFormatException(
                    $"Model folder {folder} is incomplete: shard {shard}, listed in {IndexFileName}, is missing. Download it (all shards are needed).");
        }
        return shardOf;
    }

    /// <summary>All tensor names.</summary>
    public IReadOnlyCollection<string> Names => _shardOf.Keys;

    /// <summary>True when the checkpoint holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _shardOf.ContainsKey(name);

    /// <summary>Shape of a tensor without reading it.</summary>
    public long[] Shape(string name) => (long[])Locate(name).Info.Shape.Clone();

    /// <summary>The header entry of a tensor (dtype, shape, offsets in its shard).</summary>
    public SafeTensorInfo Info(string name) => Locate(name).Info;

    /// <summary>Reads a tensor onto the CPU (float types as float32).</summary>
    public torch.Tensor Read(string name) => Locate(name).File.Read(name);

    private (SafeTensorsFile File, SafeTensorInfo Info) Locate(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_shardOf.TryGetValue(name, out string? shard))
            throw new ModelFormatException(
                $"The weights in {_folder} have no tensor named '{SafeTensorsHeader.Printable(name)}'; the checkpoint does not match its config.json (wrong architecture or an incomplete download).");
        SafeTensorsFile file = Shard(shard);
        if (!file.Tensors.TryGetValue(name, out SafeTensorInfo? info))
            throw new ModelFormatException(
                $"{_indexPath} says tensor '{SafeTensorsHeader.Printable(name)}' is in {shard}, but that shard does not contain it; the index and the shards come from different downloads. Download the model again.");
        return (file, info);
    }

    private SafeTensorsFile Shard(string shard)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_open.TryGetValue(shard, out SafeTensorsFile? file))
            {
                file = SafeTensorsFile.Open(System.IO.Path.Combine(_folder, shard));
                _open.Add(shard, file);
            }
            return file;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (SafeTensorsFile file in _open.Values) file.Dispose();
            _open.Clear();
        }
    }
}
