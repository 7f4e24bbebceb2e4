using System;
using System.Diagnostics;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// Ownership as a row of <c>leases</c>: the holder (host, pid, a session id of its own), and an
/// expiry renewed by a heartbeat timer. Every time is the database's <c>now()</c>, so the
/// machines' clocks never have to agree. A lease that expired can be taken over by another owner;
/// the late holder learns it at its next boundary (<see cref="ThrowIfLost"/>) or commit (the log's
/// fence), whichever comes first, and records nothing more.
/// </summary>
internal sealed class PgLease : IRunOwnership
{
    private readonly PostgreSqlRunStore _store;
    private readonly TimeSpan _duration;
    private readonly Timer _heartbeat;
    private readonly Stopwatch _sinceRenewal = Stopwatch.StartNew();
    private readonly object _gate = new();
    private OwnerRecord? _takenBy;
    private bool _lost;
    private bool _paused;
    private bool _disposed;
    private int _renewing;

    private PgLease(PostgreSqlRunStore store, Guid session, OwnerRecord holder, TimeSpan duration, TimeSpan heartbeat)
    {
        _store = store;
        Session = session;
        Holder = holder;
        _duration = duration;
        _heartbeat = new Timer(_ => Heartbeat(), null, heartbeat, heartbeat);
    }

    public Guid Session { get; }

    public OwnerRecord Holder { get; }

    /// <summary>Takes the run's lease, or throws RunLocked naming the live holder.</summary>
    public static PgLease Acquire(PostgreSqlRunStore store, DateTimeOffset now, TimeSpan duration, TimeSpan heartbeat)
    {
        var session = Guid.NewGuid();
        var holder = new OwnerRecord { ProcessId = Environment.ProcessId, Host = Environment.MachineName, StartedAt = now };
        string s = store.S;

        // The same session may find its own row: an earlier try whose commit's answer was lost.
        string sql = $"""
            INSERT INTO {s}.leases AS l (run_id, session, host, pid, started_at, acquired_at, heartbeat_at, expires_at)
            VALUES (@run, @session, @host, @pid, @started, now(), now(), now() + @duration)
            ON CONFLICT (run_id) DO UPDATE SET session = EXCLUDED.session, host = EXCLUDED.host, pid = EXCLUDED.pid,
                started_at = EXCLUDED.started_at, acquired_at = now(), heartbeat_at = now(), expires_at = EXCLUDED.expires_at
            WHERE l.expires_at <= now() OR l.session = EXCLUDED.session
            """;
        for (int tries = 0; ; tries++)
        {
            int taken = store.Db.Run("take ownership of the run", idempotent: true, connection =>
            {
                using var command = store.Db.Command(connection, sql);
                command.Parameters.AddWithValue("run", store.RunId);
                command.Parameters.AddWithValue("session", session);
                command.Parameters.AddWithValue("host", holder.Host);
                command.Parameters.AddWithValue("pid", holder.ProcessId);
                command.Parameters.AddWithValue("started", now);
                command.Parameters.AddWithValue("duration", duration);
                return command.ExecuteNonQuery();
            });
            if (taken == 1)
            {
                return new PgLease(store, session, holder, duration, heartbeat);
            }

            // Held and alive; read who holds it (it may have been released meanwhile: try again).
            var owner = store.ReadLeaseHolder();
            if (owner is not null || tries == 2)
            {
                throw new RunLockedException(store.RunId, owner);
            }
        }
    }

    public void ThrowIfLost()
    {
        bool check;
        lock (_gate)
        {
            if (_lost)
            {
                throw Lost();
            }

            // No renewal for a whole lease: the heartbeat could not reach the database, or this
            // process was paused. Ask the database before doing more work.
            check = _sinceRenewal.Elapsed >= _duration;
        }

        if (check)
        {
            Renew();
            lock (_gate)
            {
                if (_lost)
                {
                    throw Lost();
                }
            }
        }
    }

    /// <summary>Test seam: stops the heartbeat, as a paused or partitioned holder would.</summary>
    internal void PauseHeartbeat()
    {
        lock (_gate)
        {
            _paused = true;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        using (var stopped = new ManualResetEvent(false))
        {
            if (_heartbeat.Dispose(stopped))
            {
                stopped.WaitOne(TimeSpan.FromSeconds(5));
            }
        }

        try
        {
            // Released for the next owner at once; if this fails the lease simply expires.
            _store.Db.Run("release ownership of the run", idempotent: true, connection =>
            {
                using var command = _store.Db.Command(connection, $"DELETE FROM {_store.S}.leases WHERE run_id = @run AND session = @session");
                command.Parameters.AddWithValue("run", _store.RunId);
                command.Parameters.AddWithValue("session", Session);
                command.ExecuteNonQuery();
            });
        }
        catch (RunToolsException)
        {
        }
    }

    private void Heartbeat()
    {
        lock (_gate)
        {
            if (_paused || _disposed || _lost)
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
            // Unreachable for a whole lease: ThrowIfLost asks again once a whole lease passed without renewal.
        }
        finally
        {
            Volatile.Write(ref _renewing, 0);
        }
    }

    /// <summary>
    /// Extends the lease while the row still names this session. An expired lease nobody took is
    /// still this holder's (nobody else can have worked on the run); one taken over is lost for good.
    /// </summary>
    private void Renew()
    {
        int renewed = _store.Db.Run("renew ownership of the run", idempotent: true, connection =>
        {
            using var command = _store.Db.Command(connection,
                $"UPDATE {_store.S}.leases SET heartbeat_at = now(), expires_at = now() + @duration WHERE run_id = @run AND session = @session");
            command.Parameters.AddWithValue("run", _store.RunId);
            command.Parameters.AddWithValue("session", Session);
            command.Parameters.AddWithValue("duration", _duration);
            return command.ExecuteNonQuery();
        }, _duration);

        if (renewed == 1)
        {
            lock (_gate)
            {
                _sinceRenewal.Restart();
            }

            return;
        }

        var takenBy = _store.ReadLeaseHolder();
        lock (_gate)
        {
            _lost = true;
            _takenBy = takenBy;
        }
    }

    private RunToolsException Lost() => new(ErrorIds.NotOwner, RunToolsErrorCategory.InvalidOperation,
        $"This attempt lost ownership of run '{_store.RunId}': its lease expired while it was paused or cut off from the database"
        + (_takenBy is null ? string.Empty : $", and process {_takenBy} took the run over")
        + ". It records nothing more; what it recorded before is kept, and the run goes on under its current owner (or resume it).",
        _store.RunId);
}
