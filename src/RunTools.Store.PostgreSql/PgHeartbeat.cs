using System;
using System.Diagnostics;
using System.Threading;
using RunTools.Core;

namespace RunTools.Store.PostgreSql;

/// <summary>What a renewal found: the row renewed, taken from its holder (expired and taken over), or removed by whoever ended it.</summary>
internal enum PgRenewal
{
    Renewed,
    Lost,
    Ended,
}

/// <summary>
/// Keeps a row alive for its holder (a run's lease, a worker's registration): a timer renews it
/// every heartbeat through the holder's statement and remembers when it was lost or ended, which
/// is final. A renewal waits out an unreachable database for up to one lease; when no renewal
/// succeeded for a whole lease (the database was unreachable, or this process paused),
/// <see cref="Check"/> asks the database before the holder does more work.
/// </summary>
internal sealed class PgHeartbeat : IDisposable
{
    private readonly Func<PgRenewal> _renew;
    private readonly Timer _timer;
    private readonly Stopwatch _sinceRenewal = Stopwatch.StartNew();
    private readonly object _gate = new();
    private PgRenewal _state = PgRenewal.Renewed;
    private bool _paused;
    private bool _stopped;
    private int _renewing;

    /// <summary>
    /// Starts renewing every <see cref="PostgreSqlStoreOptions.HeartbeatInterval"/> (a third of the
    /// lease by default). <paramref name="renew"/> runs the holder's renewal statement with
    /// <see cref="Duration"/> as its patience; the first tick comes one interval from now.
    /// </summary>
    public PgHeartbeat(PostgreSqlStoreOptions options, Func<PgRenewal> renew)
    {
        Duration = options.LeaseDuration;
        _renew = renew;
        var interval = options.HeartbeatInterval ?? TimeSpan.FromTicks(Duration.Ticks / 3);
        _timer = new Timer(_ => Tick(), null, interval, interval);
    }

    /// <summary>How long the row lasts without a renewal.</summary>
    public TimeSpan Duration { get; }

    /// <summary>
    /// The row's state; renews it first when no renewal succeeded for a whole lease, and then
    /// throws the database's error (StoreUnavailable) when it stays unreachable for another lease.
    /// </summary>
    public PgRenewal Check()
    {
        lock (_gate)
        {
            if (_state != PgRenewal.Renewed || _sinceRenewal.Elapsed < Duration)
            {
                return _state;
            }
        }

        Renew();
        lock (_gate)
        {
            return _state;
        }
    }

    /// <summary>Test seam: stops the renewals, as a paused or partitioned holder would.</summary>
    internal void Pause()
    {
        lock (_gate)
        {
            _paused = true;
        }
    }

    /// <summary>
    /// Stops the timer and waits (up to 5 s) for a renewal under way. True the first time only, so
    /// the holder releases its row once.
    /// </summary>
    public bool Stop()
    {
        lock (_gate)
        {
            if (_stopped)
            {
                return false;
            }

            _stopped = true;
        }

        using var stopped = new ManualResetEvent(false);
        if (_timer.Dispose(stopped))
        {
            stopped.WaitOne(TimeSpan.FromSeconds(5));
        }

        return true;
    }

    /// <summary>
    /// Stops, then (the first time only) lets the holder give its row up at once with
    /// <paramref name="release"/>. A release that fails is ignored: the row then simply expires.
    /// </summary>
    public void StopAndRelease(Action release)
    {
        if (!Stop())
        {
            return;
        }

        try
        {
            release();
        }
        catch (RunToolsException)
        {
        }
    }

    public void Dispose() => Stop();

    private void Tick()
    {
        lock (_gate)
        {
            if (_paused || _stopped || _state != PgRenewal.Renewed)
            {
                return;
            }
        }

        // A renewal waiting out an outage must not pile up the timer's later ticks behind it.
        if (Interlocked.Exchange(ref _renewing, 1) == 1)
        {
            return;
        }

        try
        {
            Renew();
        }
        catch (RunToolsException)
        {
            // Unreachable for a whole lease: Check asks again once a whole lease passed without renewal.
        }
        finally
        {
            Volatile.Write(ref _renewing, 0);
        }
    }

    private void Renew()
    {
        var renewal = _renew();
        lock (_gate)
        {
            if (renewal == PgRenewal.Renewed)
            {
                _sinceRenewal.Restart();
            }
            else if (_state == PgRenewal.Renewed)
            {
                _state = renewal;
            }
        }
    }
}
