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
}
