using TorchSharp;

namespace LoraMixer.Runtime;

/// <summary>Process-wide TorchSharp settings: device selection and CPU threads.</summary>
public static class TorchRuntime
{
    /// <summary>
    /// Parses a device name ("cpu", "cuda", "cuda:1") into a TorchSharp device; CUDA needs the
    /// TorchSharp-cuda package in place of TorchSharp-cpu.
    /// </summary>
    public static torch.Device ParseDevice(string name)
    {
        string normalized = name.Trim().ToLowerInvariant();
        if (normalized == "cpu") return torch.CPU;
        if (normalized.StartsWith("cuda", StringComparison.Ordinal))
        {
            if (!torch.cuda.is_available())
                throw new ArgumentException(
                    $"--device {name}: CUDA is not available in this build. Build with -p:TorchSharpPackage=TorchSharp-cuda-linux (or -windows) on a machine with an NVIDIA GPU, or use --device cpu.");
            return torch.device(normalized);
        }
        throw new ArgumentException($"--device {name}: unknown device; use cpu, cuda or cuda:N.");
    }
}
