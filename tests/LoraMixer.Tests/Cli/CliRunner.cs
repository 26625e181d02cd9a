using System.Diagnostics;

namespace LoraMixer.Tests.Cli;

/// <summary>Runs the built `loramixer` tool in a child process, as a user would.</summary>
public static class CliRunner
{
    public sealed record Outcome(int ExitCode, string Stdout, string Stderr);

    public static Outcome Run(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "LoraMixer.Cli.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(120_000))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("loramixer " + string.Join(' ', args) + " did not finish in 120 s");
        }
        return new Outcome(process.ExitCode, stdout.Result, stderr.Result);
    }
}
