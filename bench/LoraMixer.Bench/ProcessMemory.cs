namespace LoraMixer.Bench;

/// <summary>Resident memory of this process from /proc (Linux); 0 elsewhere.</summary>
internal static class ProcessMemory
{
    public static double CurrentRssMb() => Read("VmRSS:");

    public static double PeakRssMb() => Read("VmHWM:");

    private static double Read(string key)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return 0;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line[key.Length..].Trim().Split(' ')[0]) / 1024.0;
    }
}
