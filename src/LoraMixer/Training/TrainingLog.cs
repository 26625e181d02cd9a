using System.Text.Json;
using LoraMixer.Errors;

namespace LoraMixer.Training;

/// <summary>
/// <c>train_log.jsonl</c>: one JSON object per line, a step line per optimizer step and an eval line per
/// evaluation. Non-finite numbers are written as null (JSON has no NaN).
/// </summary>
internal sealed class TrainingLog : IDisposable
{
    private static readonly string[] Reserved = ["step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "eval"];
    private readonly FileStream _stream;

    private TrainingLog(FileStream stream, long lines)
    {
        _stream = stream;
        LineCount = lines;
    }

    /// <summary>Complete lines in the file.</summary>
    public long LineCount { get; private set; }

    /// <summary>Starts a new, empty log.</summary>
    public static TrainingLog Create(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        return new TrainingLog(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.Read), 0);
    }

    /// <summary>
    /// Opens an existing log for a resumed run, cutting it after its first <paramref name="lines"/> lines so
    /// that steps run after the checkpoint are not logged twice.
    /// </summary>
    public static TrainingLog Resume(string path, long lines)
    {
        if (!File.Exists(path))
        {
            if (lines == 0) return Create(path);
            throw new ModelFormatException($"Training log {path} is missing but the checkpoint recorded {lines} lines in it; restore the log, or start a new run in another folder.");
        }
        var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        try
        {
            long end = 0, seen = 0;
            var buffer = new byte[1 << 16];
            while (seen < lines)
            {
                int read = stream.Read(buffer);
                if (read == 0)
                    throw new ModelFormatException($"Training log {path} has {seen} complete lines but the checkpoint recorded {lines}; the log was edited or cut. Restore it, or start a new run in another folder.");
                for (int i = 0; i < read && seen < lines; i++)
                {
                    if (buffer[i] != (byte)'\n') continue;
                    seen++;
                    end = stream.Position - read + i + 1;
                }
            }
            stream.SetLength(end);
            stream.Seek(end, SeekOrigin.Begin);
            stream.Flush(flushToDisk: true);
            return new TrainingLog(stream, lines);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Appends a step line with the objective's extra metrics after the standard fields.</summary>
    public void WriteStep(int step, double epoch, double loss, double lr, double gradNorm, double tokensPerSecond,
        IReadOnlyDictionary<string, double> metrics)
    {
        WriteLine(json =>
        {
            json.WriteNumber("step", step);
            Number(json, "epoch", epoch);
            Number(json, "loss", loss);
            Number(json, "lr", lr);
            Number(json, "grad_norm", gradNorm);
            Number(json, "tokens_per_s", tokensPerSecond);
            foreach (var (name, value) in metrics)
            {
                if (Reserved.Contains(name))
                    throw new InvalidOperationException($"The training objective reported a metric named '{name}', which the training log reserves; rename it.");
                Number(json, name, value);
            }
        });
    }

    /// <summary>Appends <c>{"step": step, "eval": {...}}</c>.</summary>
    public void WriteEval(int step, IReadOnlyDictionary<string, double> metrics)
    {
        WriteLine(json =>
        {
            json.WriteNumber("step", step);
            json.WriteStartObject("eval");
            foreach (var (name, value) in metrics) Number(json, name, value);
            json.WriteEndObject();
        });
    }

    /// <summary>Forces written lines to the disk, so a checkpoint never counts lines a crash could lose.</summary>
    public void Sync() => _stream.Flush(flushToDisk: true);

    /// <inheritdoc />
    public void Dispose() => _stream.Dispose();

    private void WriteLine(Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            body(json);
            json.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        _stream.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
        _stream.Flush();
        LineCount++;
    }

    private static void Number(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value)) json.WriteNumber(name, value);
        else json.WriteNull(name);
    }
}
