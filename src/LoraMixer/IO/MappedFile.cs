using System.IO.MemoryMappedFiles;
using LoraMixer.Errors;
using TorchSharp;

namespace LoraMixer.IO;

/// <summary>
/// A whole file mapped read-only. Readers copy tensors straight out of the mapping, so a large checkpoint
/// never passes through a managed buffer.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _pointer;

    private MappedFile(MemoryMappedFile map, MemoryMappedViewAccessor view, byte* pointer, long length)
    {
        _map = map;
        _view = view;
        _pointer = pointer;
        Length = length;
    }

    /// <summary>Bytes in the mapping: the file's length when it was opened.</summary>
    public long Length { get; }

    /// <summary>First byte of the file.</summary>
    public byte* Pointer => _pointer != null ? _pointer : throw new ObjectDisposedException(nameof(MappedFile));

    /// <summary>
    /// Opens and maps <paramref name="path"/>. I/O failures become <see cref="ModelFormatException"/>s that
    /// call the file a <paramref name="description"/>; a file shorter than <paramref name="minimumLength"/>
    /// (at least 1, since an empty file cannot be mapped) fails with <paramref name="tooShort"/>(length).
    /// </summary>
    public static MappedFile Open(string path, string description, long minimumLength, Func<long, ModelFormatException> tooShort)
    {
        FileStream stream;
        try
        {
            // FileShare.Delete lets a writer atomically replace the file while this mapping stays valid.
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelFormatException($"Cannot open {description} {path}: {e.Message}", e);
        }
        try
        {
            long length = stream.Length;
            if (length < Math.Max(1, minimumLength)) throw tooShort(length);
            return Map(stream, length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stream.Dispose();
            throw new ModelFormatException($"Cannot read {description} {path}: {e.Message}", e);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Maps <paramref name="stream"/> (taking ownership); <paramref name="length"/> must be its current,
    /// non-zero length, since an empty file cannot be mapped.
    /// </summary>
    private static MappedFile Map(FileStream stream, long length)
    {
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0,
                MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            byte* pointer = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
            // The view starts at the page boundary at or below offset 0, which is offset 0 itself, but
            // PointerOffset is the documented way to find byte 0.
            return new MappedFile(map, view, pointer + view.PointerOffset, length);
        }
        catch
        {
            view?.Dispose();
            if (map is not null) map.Dispose();
            else stream.Dispose();
            throw;
        }
    }

    /// <summary>The <paramref name="length"/> bytes at <paramref name="offset"/>.</summary>
    public ReadOnlySpan<byte> Span(long offset, int length)
    {
        CheckRange(offset, length);
        return new ReadOnlySpan<byte>(Pointer + offset, length);
    }

    /// <summary>
    /// A new CPU tensor of <paramref name="shape"/> filled from the <paramref name="dtype"/> elements at
    /// <paramref name="offset"/> (half types widen to float32).
    /// </summary>
    public torch.Tensor ReadTensor(long offset, long[] shape, SafeTensorsDType dtype)
    {
        using var scope = torch.NewDisposeScope();
        var tensor = torch.empty(shape, SafeTensorsDTypes.ReadType(dtype));
        CheckRange(offset, tensor.numel() * SafeTensorsDTypes.Size(dtype));
        TensorMemory.CopyInto(tensor, Pointer + offset, dtype);
        return tensor.MoveToOuterDisposeScope();
    }

    // Callers validate offsets against the file format first; this is the last line of defence against
    // reading outside the mapping, which would crash the process rather than throw.
    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes [{offset}, {offset}+{length}) lie outside the {Length}-byte mapping");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_pointer == null) return;
        _pointer = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
