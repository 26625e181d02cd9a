namespace LoraMixer.Models.Mamba;

/// <summary>Which implementation of <see cref="SelectiveScan"/> a mixer uses for multi-token passes.</summary>
public enum SelectiveScanMode
{
    /// <summary><see cref="SelectiveScan.Chunked"/>: the default, a chunk of positions per step.</summary>
    Chunked,
    /// <summary><see cref="SelectiveScan.Sequential"/>: one position per step (reference and benchmark baseline).</summary>
    Sequential,
}
