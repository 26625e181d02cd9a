using System.Diagnostics;

namespace LoraMixer.Models.Decoding;

/// <summary>
/// The parallel loops of the decode kernels: parts run on the calling thread and on resident worker threads that
/// spin for a short while after each loop, so the next loop of the same step starts without waking a thread.
/// Idle resident threads beyond the loop's thread count take parts too (they are spinning anyway).
/// A decoding step runs ~5 loops per layer of ~0.1–0.5 ms each; <see cref="Parallel.For(int, int, Action{int})"/>
/// paid ~20 µs to wake a pool thread for each (about a tenth of a 135M-shaped decoding step). Idle workers block
/// after <see cref="SpinTicks"/>. A second caller while a loop runs (tests run in parallel) uses
/// <see cref="Parallel.For(int, int, Action{int})"/> instead.
/// </summary>
internal static class DecodeParallel
{
    // How long an idle worker spins before it blocks: longer than the gaps between the loops of one step.
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs

    private static readonly object Gate = new();
    private static readonly List<Thread> Workers = [];
    private static int _busy, _sleepers;
    private static long _generation;

    // The current loop: its body, part count, next part to take, parts finished, first error.
    // _next stays at Closed between loops, so a worker that wakes late takes no part.
    private const int Closed = 1 << 30;
    private static Action<int>? _body;
    private static int _parts, _next = Closed, _done;
    private static Exception? _error;

    /// <summary>
    /// Runs body(0) … body(parts − 1) on up to <paramref name="threads"/> threads (the caller's included) and returns
    /// when all are done; threads take the next part as they finish one.
    /// </summary>
    public static void For(int parts, int threads, Action<int> body)
    {
        threads = Math.Min(threads, parts);
        if (threads <= 1)
        {
            for (int part = 0; part < parts; part++) body(part);
            return;
        }
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
            return;
        }
        try
        {
            EnsureWorkers(threads - 1);
            // Everything a worker reads is written before _next opens the loop (a worker reads it after taking a part).
            _body = body;
            _parts = parts;
            _error = null;
            _done = 0;
            Volatile.Write(ref _next, 0);
            Interlocked.Increment(ref _generation);
            if (Volatile.Read(ref _sleepers) > 0)
                lock (Gate) Monitor.PulseAll(Gate);
            Work();
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) < parts) spin.SpinOnce(sleep1Threshold: -1);
            Volatile.Write(ref _next, Closed);
            _body = null;
            if (_error is { } error) throw new AggregateException(error);
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    // Takes parts of the current loop until none is left.
    private static void Work()
    {
        while (true)
        {
            int part = Interlocked.Increment(ref _next) - 1;
            if (part >= Volatile.Read(ref _parts)) return;
            try
            {
                Volatile.Read(ref _body)!(part);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
            }
            Interlocked.Increment(ref _done);
        }
    }

    private static void EnsureWorkers(int count)
    {
        if (Workers.Count >= count) return;
        lock (Gate)
        {
            while (Workers.Count < count)
            {
                var thread = new Thread(Loop) { IsBackground = true, Name = "decode worker " + Workers.Count };
                Workers.Add(thread);
                thread.Start(Volatile.Read(ref _generation));
            }
        }
    }

    private static void Loop(object? start)
    {
        long seen = (long)start!;
        while (true)
        {
            long began = Stopwatch.GetTimestamp();
            while (Volatile.Read(ref _generation) == seen)
            {
                if (Stopwatch.GetTimestamp() - began > SpinTicks)
                {
                    lock (Gate)
                    {
                        _sleepers++;
                        while (Volatile.Read(ref _generation) == seen) Monitor.Wait(Gate);
                        _sleepers--;
                    }
                    break;
                }
                Thread.SpinWait(20);
            }
            seen = Volatile.Read(ref _generation);
            Work();
        }
    }
}
