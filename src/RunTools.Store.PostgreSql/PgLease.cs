using System;
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
    private readonly PgHeartbeat _heartbeat;
    private volatile OwnerRecord? _takenBy;

    private PgLease(PostgreSqlRunStore store, Guid session, OwnerRecord holder)
    {
        _store = store;
        Session = session;
        Holder = holder;
        _heartbeat = new PgHeartbeat(store.Options, Renew);
    }

    public Guid Session { get; }

    public OwnerRecord Holder { get; }

    /// <summary>Takes the run's lease, or throws RunLocked naming the live holder.</summary>
    public static PgLease Acquire(PostgreSqlRunStore store, DateTimeOffset now)
    {
        var duration = store.Options.LeaseDuration;
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
                return new PgLease(store, session, holder);
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
        if (_heartbeat.Check() != PgRenewal.Renewed)
        {
            throw Lost();
        }
    }

    /// <summary>Test seam: stops the heartbeat, as a paused or partitioned holder would.</summary>
    internal void PauseHeartbeat() => _heartbeat.Pause();

    // Released for the next owner at once; if this fails the lease simply expires.
    public void Dispose() => _heartbeat.StopAndRelease(() => _store.Db.Run("release ownership of the run", idempotent: true, connection =>
    {
        using var command = _store.Db.Command(connection, $"DELETE FROM {_store.S}.leases WHERE run_id = @run AND session = @session");
        command.Parameters.AddWithValue("run", _store.RunId);
        command.Parameters.AddWithValue("session", Session);
        command.ExecuteNonQuery();
    }));

    /// <summary>
    /// Extends the lease while the row still names this session. An expired lease nobody took is
    /// still this holder's (nobody else can have worked on the run); one taken over is lost for good.
    /// </summary>
    private PgRenewal Renew()
    {
        int renewed = _store.Db.Run("renew ownership of the run", idempotent: true, connection =>
        {
            using var command = _store.Db.Command(connection,
                $"UPDATE {_store.S}.leases SET heartbeat_at = now(), expires_at = now() + @duration WHERE run_id = @run AND session = @session");
            command.Parameters.AddWithValue("run", _store.RunId);
            command.Parameters.AddWithValue("session", Session);
            command.Parameters.AddWithValue("duration", _heartbeat.Duration);
            return command.ExecuteNonQuery();
        }, _heartbeat.Duration);

        if (renewed == 1)
        {
            return PgRenewal.Renewed;
        }

        _takenBy = _store.ReadLeaseHolder();
        return PgRenewal.Lost;
    }

    private RunToolsException Lost() => new(ErrorIds.NotOwner, RunToolsErrorCategory.InvalidOperation,
        $"This attempt lost ownership of run '{_store.RunId}': its lease expired while it was paused or cut off from the database"
        + (_takenBy is null ? string.Empty : $", and process {_takenBy} took the run over")
        + ". It records nothing more; what it recorded before is kept, and the run goes on under its current owner (or resume it).",
        _store.RunId);
}
