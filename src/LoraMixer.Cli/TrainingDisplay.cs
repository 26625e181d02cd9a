using LoraMixer.Training;
using Spectre.Console;

namespace LoraMixer.Cli;

/// <summary>
/// Shows training progress: a live bar (step, loss, tokens/s, ETA) on a terminal, a line every tenth of
/// the run when output is redirected. Ctrl+C asks the trainer to checkpoint and stop.
/// </summary>
internal static class TrainingDisplay
{
    public static T Run<T>(string title, Func<IProgress<TrainingProgress>, CancellationToken, T> work)
    {
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            if (!cts.IsCancellationRequested) Console.Error.WriteLine($"\n{title}: stopping after this step and writing a checkpoint (Ctrl+C again to kill)");
            else Environment.Exit(130);
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            if (Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
            {
                int every = 0;
                var plain = new SyncProgress<TrainingProgress>(p =>
                {
                    every = every == 0 ? Math.Max(1, p.TotalSteps / 10) : every;
                    if (p.Step % every == 0 || p.Step == p.TotalSteps || p.Eval is not null)
                        Console.WriteLine($"{title}: {Describe(p)}");
                });
                return work(plain, cts.Token);
            }
            T result = default!;
            AnsiConsole.Progress()
                .AutoClear(false)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(Markup.Escape(title), maxValue: 1);
                    var live = new SyncProgress<TrainingProgress>(p =>
                    {
                        task.MaxValue = p.TotalSteps;
                        task.Value = p.Step;
                        task.Description = Markup.Escape($"{title} {Describe(p)}");
                    });
                    result = work(live, cts.Token);
                });
            return result;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static string Describe(TrainingProgress p)
    {
        string text = $"step {p.Step}/{p.TotalSteps} loss {p.Loss:F4} lr {p.LearningRate:G3} {p.TokensPerSecond:F0} tok/s ETA {p.Eta:mm\\:ss}";
        if (p.Eval is { } eval && eval.TryGetValue("eval_loss", out double el)) text += $" eval_loss {el:F4}";
        return text;
    }
}
