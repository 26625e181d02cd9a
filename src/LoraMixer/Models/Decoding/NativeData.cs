using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace LoraMixer.Models.Decoding;

/// <summary>Where a CPU fp32 tensor's elements live, for kernels that read or write them in place.</summary>
internal static class NativeData
{
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>The address of the first element of a contiguous fp32 CPU tensor; false for anything else (or null).</summary>
    public static bool TryFloat(Tensor? t, out nint data)
    {
        data = 0;
        if (t is null || t.dtype != ScalarType.Float32 || t.device_type != DeviceType.CPU || !t.is_contiguous()) return false;
        data = THSTensor_data(t.Handle);
        return data != 0;
    }

    /// <summary>The address of the first element of a tensor the caller has already checked.</summary>
    public static nint Of(Tensor t) => THSTensor_data(t.Handle);

    /// <summary>
    /// Scratch buffers of <paramref name="sizes"/> floats each, carved from one pinned array (kept alive by the caller
    /// through <paramref name="memory"/>), each starting on a 64-byte boundary; returns their addresses.
    /// </summary>
    public static unsafe nint[] PinnedBuffers(long[] sizes, out float[] memory)
    {
        long total = sizes.Sum(s => (s + 15) / 16 * 16) + 16;
        memory = GC.AllocateUninitializedArray<float>(checked((int)total), pinned: true);
        float* p = (float*)Marshal.UnsafeAddrOfPinnedArrayElement(memory, 0);
        p = (float*)(((nint)p + 63) & ~(nint)63);
        var buffers = new nint[sizes.Length];
        for (int i = 0; i < sizes.Length; i++)
        {
            buffers[i] = (nint)p;
            p += (sizes[i] + 15) / 16 * 16;
        }
        return buffers;
    }
}
