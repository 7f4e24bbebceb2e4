using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Threading;

namespace RunTools;

/// <summary>
/// Worker runspaces of parallel items that an attempt of this process has finished with, kept open
/// for the next attempt: opening one (the engine, the modules, the location) costs far more than
/// an item, and a script that calls Start-Run in a loop would pay it every time. A worker waiting
/// here is attached to no run; it is taken by an attempt it fits (<see cref="ItemWorker.Fits"/>),
/// and closed after <see cref="IdleTimeout"/> unused, when the module is removed, and at process exit.
/// </summary>
internal static class IdleItemWorkers
{
    /// <summary>At most this many wait (the largest -ThrottleLimit): beyond it the oldest closes.</summary>
    private const int MaxIdle = 64;

    private static readonly object s_gate = new();

    // Guarded by s_gate: oldest first.
    private static readonly List<(ItemWorker Worker, long ParkedAt)> s_idle = new();
    private static Timer? s_sweep;
    private static bool s_exitHooked;

    /// <summary>How long an unused worker waits for the next attempt before it closes; zero or less closes it at once.</summary>
    internal static TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How many workers wait now (tests read it).</summary>
    internal static int Count
    {
        get
        {
            lock (s_gate)
            {
                return s_idle.Count;
            }
        }
    }

    /// <summary>A waiting worker that fits an attempt with <paramref name="host"/> and <paramref name="modules"/>, the most recently used first; null when none does.</summary>
    public static ItemWorker? Take(PSHost host, IReadOnlyList<string> modules)
    {
        lock (s_gate)
        {
            for (int i = s_idle.Count - 1; i >= 0; i--)
            {
                var worker = s_idle[i].Worker;
                if (worker.Fits(host, modules))
                {
                    s_idle.RemoveAt(i);
                    return worker;
                }
            }
        }

        return null;
    }

    /// <summary>Keeps a worker its attempt has let go of (<see cref="ItemWorker.Detach"/>) for the next one.</summary>
    public static void Park(ItemWorker worker)
    {
        var timeout = IdleTimeout;
        if (timeout <= TimeSpan.Zero)
        {
            worker.Close();
            return;
        }

        ItemWorker? oldest = null;
        lock (s_gate)
        {
            s_idle.Add((worker, Stopwatch.GetTimestamp()));
            if (s_idle.Count > MaxIdle)
            {
                oldest = s_idle[0].Worker;
                s_idle.RemoveAt(0);
            }

            if (!s_exitHooked)
            {
                s_exitHooked = true;
                AppDomain.CurrentDomain.ProcessExit += (_, _) => CloseAll(TimeSpan.Zero);
            }

            s_sweep ??= new Timer(_ => Sweep(), null, Timeout.Infinite, Timeout.Infinite);
            if (s_idle.Count == 1)
            {
                s_sweep.Change(timeout, Timeout.InfiniteTimeSpan);
            }
        }

        oldest?.Close();
    }

    /// <summary>Closes every waiting worker, each given up to <paramref name="patience"/> to close its runspace; returns how many.</summary>
    public static int CloseAll(TimeSpan patience)
    {
        List<ItemWorker> closing;
        lock (s_gate)
        {
            closing = s_idle.Select(i => i.Worker).ToList();
            s_idle.Clear();
        }

        Close(closing, patience);
        return closing.Count;
    }

    /// <summary>Closes the workers unused for <see cref="IdleTimeout"/>; runs again when the next one's time is up.</summary>
    private static void Sweep()
    {
        var closing = new List<ItemWorker>();
        lock (s_gate)
        {
            long now = Stopwatch.GetTimestamp();
            long limit = (long)(IdleTimeout.TotalSeconds * Stopwatch.Frequency);
            while (s_idle.Count > 0 && now - s_idle[0].ParkedAt >= limit)
            {
                closing.Add(s_idle[0].Worker);
                s_idle.RemoveAt(0);
            }

            if (s_idle.Count > 0)
            {
                long left = Math.Max(0, limit - (now - s_idle[0].ParkedAt));
                s_sweep?.Change(TimeSpan.FromSeconds((double)left / Stopwatch.Frequency) + TimeSpan.FromMilliseconds(10), Timeout.InfiniteTimeSpan);
            }
        }

        Close(closing, TimeSpan.FromSeconds(30));
    }

    private static void Close(List<ItemWorker> workers, TimeSpan patience)
    {
        foreach (var worker in workers)
        {
            worker.Close();
        }

        if (patience > TimeSpan.Zero)
        {
            foreach (var worker in workers)
            {
                worker.Join(patience);
            }
        }
    }
}

/// <summary>Remove-Module RunTools: the workers kept for a next attempt close (none is busy: an attempt's own close at its end).</summary>
public sealed class ItemWorkerCleanup : IModuleAssemblyCleanup
{
    public void OnRemove(PSModuleInfo psModuleInfo) => IdleItemWorkers.CloseAll(TimeSpan.FromSeconds(30));
}
