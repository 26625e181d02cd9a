namespace LoraMixer.Cli;

/// <summary>An <see cref="IProgress{T}"/> that calls back on the reporting thread (System.Progress posts elsewhere).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
