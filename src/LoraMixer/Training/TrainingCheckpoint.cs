using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using LoraMixer.Errors;
using LoraMixer.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LoraMixer.Training;

/// <summary>
/// One complete checkpoint, <c>&lt;OutputDir&gt;/checkpoints/step-000123/</c>: <c>trainable.safetensors</c>
/// (parameters by name), <c>optimizer.safetensors</c> (AdamW moments and step counts) and
/// <c>trainer_state.json</c> (<see cref="TrainerState"/>). <c>checkpoints/latest</c> names the newest
/// complete one. Saving is crash-safe: the files are written and synced in <c>step-000123.tmp-&lt;random&gt;/</c>,
/// the folder is renamed, <c>latest</c> is replaced atomically, and only then are old checkpoints deleted;
/// a crash at any point leaves <c>latest</c> naming a complete checkpoint.
/// </summary>
public sealed partial class TrainingCheckpoint
{
    /// <summary>File of the trainable parameters.</summary>
    public const string TrainableFile = "trainable.safetensors";

    /// <summary>File of the optimizer state.</summary>
    public const string OptimizerFile = "optimizer.safetensors";

    /// <summary>File of the <see cref="TrainerState"/>.</summary>
    public const string StateFile = "trainer_state.json";

    /// <summary>Text file in the checkpoints folder holding the newest complete checkpoint's folder name.</summary>
    public const string LatestFile = "latest";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private TrainingCheckpoint(string directory, TrainerState state)
    {
        Directory = directory;
        State = state;
    }

    /// <summary>The checkpoint's folder.</summary>
    public string Directory { get; }

    /// <summary>The loop state saved with it.</summary>
    public TrainerState State { get; }

    /// <summary><c>&lt;outputDir&gt;/checkpoints</c>.</summary>
    public static string CheckpointsFolder(string outputDir) => Path.Combine(outputDir, "checkpoints");

    /// <summary>Folder name of the checkpoint after <paramref name="step"/>: <c>step-000123</c>.</summary>
    public static string FolderName(int step) => "step-" + step.ToString("D6", CultureInfo.InvariantCulture);

    /// <summary>
    /// Opens a checkpoint folder, checking that all three files are there, that the state parses and that
    /// both safetensors headers are valid; throws <see cref="ModelFormatException"/> naming the bad file.
    /// </summary>
    public static TrainingCheckpoint Open(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!System.IO.Directory.Exists(directory))
            throw new ModelFormatException($"Checkpoint folder {directory} does not exist; resume from another checkpoint or start afresh.");
        foreach (string file in new[] { TrainableFile, OptimizerFile, StateFile })
            if (!File.Exists(Path.Combine(directory, file)))
                throw new ModelFormatException($"Checkpoint file {Path.Combine(directory, file)} is missing; the checkpoint is incomplete. Point checkpoints/{LatestFile} at an older complete checkpoint, or start afresh.");
        TrainerState state = ReadState(Path.Combine(directory, StateFile));
        using (SafeTensorsFile.Open(Path.Combine(directory, TrainableFile))) { }
        using (SafeTensorsFile.Open(Path.Combine(directory, OptimizerFile))) { }
        return new TrainingCheckpoint(directory, state);
    }

    /// <summary>
    /// The checkpoint that <c>checkpoints/latest</c> names, or null when <paramref name="outputDir"/> holds
    /// no checkpoints. Throws <see cref="ModelFormatException"/> when <c>latest</c> is missing beside
    /// complete checkpoints, names a missing folder, or that checkpoint is incomplete.
    /// </summary>
    public static TrainingCheckpoint? FindLatest(string outputDir)
    {
        ArgumentNullException.ThrowIfNull(outputDir);
        string folder = CheckpointsFolder(outputDir);
        string latest = Path.Combine(folder, LatestFile);
        if (!File.Exists(latest))
        {
            var complete = CompleteFolders(folder);
            if (complete.Count > 0)
                throw new ModelFormatException(
                    $"{latest} is missing although {folder} holds {string.Join(", ", complete.Select(c => Path.GetFileName(c.Path)))}; write the name of the checkpoint to resume from into {latest}, or delete {folder} to start afresh.");
            return null;
        }
        string name = File.ReadAllText(latest).Trim();
        if (!StepFolder().IsMatch(name))
            throw new ModelFormatException($"{latest} holds '{name}', not a checkpoint folder name like step-000123; write the name of a checkpoint in {folder} into it.");
        return Open(Path.Combine(folder, name));
    }

    /// <summary>True when <paramref name="outputDir"/> has a <c>checkpoints/latest</c> file or any checkpoint folder.</summary>
    public static bool AnyIn(string outputDir)
    {
        ArgumentNullException.ThrowIfNull(outputDir);
        string folder = CheckpointsFolder(outputDir);
        return File.Exists(Path.Combine(folder, LatestFile)) || CompleteFolders(folder).Count > 0;
    }

    /// <summary>
    /// Writes a checkpoint of <paramref name="parameters"/>, <paramref name="optimizer"/> and
    /// <paramref name="state"/> into <paramref name="outputDir"/>, points <c>latest</c> at it, then deletes
    /// all but the newest <paramref name="keep"/> checkpoints. Returns the new checkpoint's folder.
    /// </summary>
    public static string Save(string outputDir, TrainerState state, IReadOnlyList<KeyValuePair<string, Parameter>> parameters,
        AdamW optimizer, int keep)
    {
        ArgumentNullException.ThrowIfNull(outputDir);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(optimizer);
        if (keep < 1) throw new ArgumentOutOfRangeException(nameof(keep), keep, "At least the new checkpoint is kept.");
        string folder = CheckpointsFolder(outputDir);
        System.IO.Directory.CreateDirectory(folder);
        string name = FolderName(state.Step);
        string final = Path.Combine(folder, name);
        string temp = Path.Combine(folder, $"{name}.tmp-{Guid.NewGuid():N}"[..(name.Length + 13)]);
        System.IO.Directory.CreateDirectory(temp);
        try
        {
            using (var scope = NewDisposeScope())
            {
                // Each writer goes through AtomicFile, which syncs the file to disk before it appears.
                SafeTensorsWriter.Write(Path.Combine(temp, TrainableFile),
                    parameters.Select(p => KeyValuePair.Create(p.Key, p.Value.detach().cpu())),
                    new Dictionary<string, string> { ["format"] = "pt", ["step"] = state.Step.ToString(CultureInfo.InvariantCulture) });
                SafeTensorsWriter.Write(Path.Combine(temp, OptimizerFile), optimizer.ExportState(),
                    new Dictionary<string, string> { ["optimizer"] = "AdamW" });
            }
            AtomicFile.Write(Path.Combine(temp, StateFile), stream => JsonSerializer.Serialize(stream, state, Json));
            if (System.IO.Directory.Exists(final))
            {
                if (ReadLatestName(folder) == name)
                    throw new InvalidOperationException($"Checkpoint {final} already exists and is the latest; a step is saved only once.");
                // A leftover that latest never named (a crash between rename and latest): not a checkpoint of this run.
                System.IO.Directory.Delete(final, recursive: true);
            }
            System.IO.Directory.Move(temp, final);
        }
        catch
        {
            TryDeleteFolder(temp);
            throw;
        }
        AtomicFile.Write(Path.Combine(folder, LatestFile), stream => stream.Write(Encoding.UTF8.GetBytes(name + "\n")));
        foreach (var (_, old) in CompleteFolders(folder).Where(c => c.Step != state.Step).OrderByDescending(c => c.Step).Skip(keep - 1))
            System.IO.Directory.Delete(old, recursive: true);
        return final;
    }

    /// <summary>
    /// Deletes what a crash can leave behind: half-written <c>step-*.tmp-*</c> folders, and complete
    /// checkpoint folders newer than <paramref name="latest"/> that <c>latest</c> never named. Returns the
    /// folders deleted.
    /// </summary>
    public static IReadOnlyList<string> RemoveStale(string outputDir, TrainingCheckpoint? latest)
    {
        ArgumentNullException.ThrowIfNull(outputDir);
        string folder = CheckpointsFolder(outputDir);
        var removed = new List<string>();
        if (!System.IO.Directory.Exists(folder)) return removed;
        foreach (string dir in System.IO.Directory.GetDirectories(folder))
        {
            string name = Path.GetFileName(dir);
            bool half = TempFolder().IsMatch(name);
            bool orphan = latest is not null && StepFolder().IsMatch(name) && StepOf(name) > latest.State.Step;
            if (!half && !orphan) continue;
            System.IO.Directory.Delete(dir, recursive: true);
            removed.Add(dir);
        }
        return removed;
    }

    /// <summary>
    /// Copies the saved values into <paramref name="parameters"/> (under no_grad); throws
    /// <see cref="ModelFormatException"/> when the names or shapes differ from the saved ones.
    /// </summary>
    public void RestoreParameters(IReadOnlyList<KeyValuePair<string, Parameter>> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        string path = Path.Combine(Directory, TrainableFile);
        using var file = SafeTensorsFile.Open(path);
        using var scope = NewDisposeScope();
        var wanted = parameters.Select(p => p.Key).ToHashSet(StringComparer.Ordinal);
        string? extra = file.Tensors.Keys.FirstOrDefault(k => !wanted.Contains(k));
        if (extra is not null)
            throw new ModelFormatException($"Checkpoint file {path} holds '{extra}', which is not a trainable parameter of this run; the checkpoint is from another model or adapter configuration.");
        var values = new List<(Tensor Target, Tensor Value)>();
        foreach (var (name, parameter) in parameters)
        {
            if (!file.Contains(name))
                throw new ModelFormatException($"Checkpoint file {path} has no tensor '{name}'; the checkpoint is from another model or adapter configuration.");
            Tensor value = file.Read(name);
            if (!value.shape.SequenceEqual(parameter.shape))
                throw new ModelFormatException(
                    $"Checkpoint file {path}: '{name}' has shape [{string.Join(", ", value.shape)}], but the parameter has [{string.Join(", ", parameter.shape)}]; the checkpoint is from another configuration.");
            values.Add((parameter, value));
        }
        using var noGrad = no_grad();
        foreach (var (target, value) in values) target.copy_(value);
    }

    /// <summary>Restores the optimizer's moments and step counts; <see cref="ModelFormatException"/> names the file on a mismatch.</summary>
    public void RestoreOptimizer(AdamW optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        string path = Path.Combine(Directory, OptimizerFile);
        using var file = SafeTensorsFile.Open(path);
        optimizer.ImportState(name => file.Contains(name) ? file.Read(name) : null, path);
    }

    private static TrainerState ReadState(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            TrainerState state = JsonSerializer.Deserialize<TrainerState>(stream, Json)
                ?? throw new ModelFormatException($"Checkpoint file {path} holds null instead of the trainer state; the checkpoint is corrupt.");
            if (state.FormatVersion != 1)
                throw new ModelFormatException($"Checkpoint file {path} has format_version {state.FormatVersion}; this version of LoraMixer reads version 1.");
            if (state.Step < 0 || state.Epoch < 0 || state.BatchIndex < 0 || state.MicroIndex < 0 || state.LogLines < 0 || state.TotalSteps < state.Step)
                throw new ModelFormatException($"Checkpoint file {path} holds an impossible position (step {state.Step} of {state.TotalSteps}, epoch {state.Epoch}, batch {state.BatchIndex}); the checkpoint is corrupt.");
            return state;
        }
        catch (JsonException e)
        {
            throw new ModelFormatException($"Checkpoint file {path} is not a valid trainer state ({e.Message}); the checkpoint is corrupt. Point checkpoints/{LatestFile} at an older checkpoint.", e);
        }
    }

    private static string? ReadLatestName(string folder)
    {
        string latest = Path.Combine(folder, LatestFile);
        return File.Exists(latest) ? File.ReadAllText(latest).Trim() : null;
    }

    private static List<(int Step, string Path)> CompleteFolders(string folder) =>
        !System.IO.Directory.Exists(folder) ? [] :
        System.IO.Directory.GetDirectories(folder)
            .Select(Path.GetFileName).OfType<string>()
            .Where(n => StepFolder().IsMatch(n))
            .Select(n => (StepOf(n), Path.Combine(folder, n)))
            .ToList();

    private static int StepOf(string name) => int.Parse(name.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture);

    private static void TryDeleteFolder(string path)
    {
        try
        {
            if (System.IO.Directory.Exists(path)) System.IO.Directory.Delete(path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The original failure matters more; RemoveStale cleans up on the next resume.
        }
    }

    [GeneratedRegex(@"^step-\d{6,9}$")]
    private static partial Regex StepFolder();

    [GeneratedRegex(@"^step-\d{6,9}\.tmp-")]
    private static partial Regex TempFolder();
}
