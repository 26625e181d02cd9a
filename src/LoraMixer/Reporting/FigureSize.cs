namespace LoraMixer.Reporting;

/// <summary>The size in pixels of a figure that <see cref="ReportPlots"/> wrote.</summary>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
public readonly record struct FigureSize(int Width, int Height);
