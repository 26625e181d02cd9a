namespace LoraMixer.Training;

/// <summary>
/// Runs a training stage under the caller's progress display (a progress bar in the CLI, nothing in tests):
/// the host calls <paramref name="work"/> with its progress sink and cancellation token and returns its summary.
/// </summary>
public delegate TrainingSummary TrainingHost(string title, Func<IProgress<TrainingProgress>, CancellationToken, TrainingSummary> work);
