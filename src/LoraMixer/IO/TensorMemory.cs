using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using TorchSharp;

namespace LoraMixer.IO;

/// <summary>
/// Moves raw little-endian element bytes between unmanaged memory or streams and the storage of contiguous
/// CPU tensors, without a managed copy of the whole tensor.
/// </summary>
internal static unsafe class TensorMemory
{
    // Tensor.bytes hands out a Span, so one span can cover at most int.MaxValue bytes; work in pieces of
    // 2^28 elements (1 GiB of float32) to stay well inside that for 8-byte elements too.
    private const long ChunkElements = 1L << 28;

    /// <summary>
    /// Fills <paramref name="destination"/> (a fresh contiguous CPU tensor of the read type of
    /// <paramref name="sourceType"/>) from <c>numel × size(sourceType)</c> bytes at <paramref name="source"/>.
    /// </summary>
    public static void CopyInto(torch.Tensor destination, byte* source, SafeTensorsDType sourceType)
    {
        long count = destination.numel();
        if (count == 0) return;
        int sourceSize = SafeTensorsDTypes.Size(sourceType);
        int targetSize = (int)destination.element_size();
        nint origin = (nint)source;
        ForEachChunk(destination, (start, target) =>
        {
            var from = new ReadOnlySpan<byte>((byte*)origin + start * sourceSize, target.Length / targetSize * sourceSize);
            Convert(from, target, sourceType);
        });
    }

    /// <summary>Writes the storage of a contiguous CPU tensor to <paramref name="stream"/> as little-endian bytes.</summary>
    public static void WriteTo(torch.Tensor tensor, Stream stream)
    {
        if (tensor.numel() == 0) return;
        int elementSize = (int)tensor.element_size();
        ForEachChunk(tensor, (_, bytes) =>
        {
            if (BitConverter.IsLittleEndian || elementSize == 1)
            {
                stream.Write(bytes);
                return;
            }
            // Big-endian hosts are rare enough that a scratch copy per chunk is fine.
            byte[] scratch = bytes.ToArray();
            SwapInPlace(scratch, elementSize);
            stream.Write(scratch);
        });
    }

    private delegate void ChunkAction(long startElement, Span<byte> bytes);

    private static void ForEachChunk(torch.Tensor tensor, ChunkAction action)
    {
        long count = tensor.numel();
        if (count <= ChunkElements)
        {
            action(0, tensor.bytes);
            return;
        }
        using var scope = torch.NewDisposeScope();
        // A flat view shares the storage, and a narrow of it is contiguous, so each piece's bytes are the
        // tensor's own memory.
        var flat = tensor.view(-1);
        for (long start = 0; start < count; start += ChunkElements)
        {
            var piece = flat.narrow(0, start, Math.Min(ChunkElements, count - start));
            action(start, piece.bytes);
            piece.Dispose();
        }
    }

    private static void Convert(ReadOnlySpan<byte> from, Span<byte> to, SafeTensorsDType sourceType)
    {
        switch (sourceType)
        {
            case SafeTensorsDType.F32:
            case SafeTensorsDType.I32:
            case SafeTensorsDType.I64:
                from.CopyTo(to);
                if (!BitConverter.IsLittleEndian) SwapInPlace(to, SafeTensorsDTypes.Size(sourceType));
                break;
            case SafeTensorsDType.BF16:
                Bf16ToFloat32(from, MemoryMarshal.Cast<byte, uint>(to));
                break;
            case SafeTensorsDType.F16:
                F16ToFloat32(from, MemoryMarshal.Cast<byte, float>(to));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(sourceType), sourceType, "unknown safetensors dtype");
        }
    }

    /// <summary>bfloat16 is the upper half of a float32, so widening is a shift; no rounding is involved.</summary>
    internal static void Bf16ToFloat32(ReadOnlySpan<byte> from, Span<uint> to)
    {
        int i = 0;
        if (BitConverter.IsLittleEndian && Vector.IsHardwareAccelerated)
        {
            ReadOnlySpan<ushort> halves = MemoryMarshal.Cast<byte, ushort>(from);
            int width = Vector<ushort>.Count;
            for (; i <= halves.Length - width; i += width)
            {
                Vector.Widen(new Vector<ushort>(halves.Slice(i)), out Vector<uint> low, out Vector<uint> high);
                Vector.ShiftLeft(low, 16).CopyTo(to.Slice(i));
                Vector.ShiftLeft(high, 16).CopyTo(to.Slice(i + width / 2));
            }
        }
        for (; i < to.Length; i++) to[i] = (uint)BinaryPrimitives.ReadUInt16LittleEndian(from.Slice(2 * i)) << 16;
    }

    /// <summary>IEEE half to float32 is exact; <see cref="Half"/> handles subnormals, infinities and NaN.</summary>
    internal static void F16ToFloat32(ReadOnlySpan<byte> from, Span<float> to)
    {
        for (int i = 0; i < to.Length; i++)
            to[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(from.Slice(2 * i)));
    }

    private static void SwapInPlace(Span<byte> bytes, int elementSize)
    {
        switch (elementSize)
        {
            case 2: BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, ushort>(bytes), MemoryMarshal.Cast<byte, ushort>(bytes)); break;
            case 4: BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, uint>(bytes), MemoryMarshal.Cast<byte, uint>(bytes)); break;
            case 8: BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, ulong>(bytes), MemoryMarshal.Cast<byte, ulong>(bytes)); break;
        }
    }
}
