using System;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// A worker's registration (a row of <c>workers</c>): it joins the attempt running when it
/// registers, waits until the owner admits it, and is renewed by a heartbeat like a lease. Once
/// it expires the owner may take its claims over, and its late events are refused.
/// </summary>
internal sealed class PgWorkerMembership : IRunOwnership
{
    private static readonly TimeSpan s_admissionPoll = TimeSpan.FromMilliseconds(100);
    private readonly PostgreSqlRunStore _run;
    private readonly Guid _worker;
    private readonly PgHeartbeat _heartbeat;

    private PgWorkerMembership(PostgreSqlRunStore run, Guid worker, OwnerRecord holder, int attempt)
    {
        _run = run;
        _worker = worker;
        Holder = holder;
        Attempt = attempt;
        _heartbeat = new PgHeartbeat(run.Options, Renew);
    }

    public OwnerRecord Holder { get; }

    /// <summary>The attempt joined.</summary>
    public int Attempt { get; }

    /// <summary>
    /// Registers for the attempt running now (RunNotRunning when the run has no live owner) and
    /// returns once admitted: the owner admits waiting workers at its next item boundary.
    /// </summary>
    public static PgWorkerMembership Join(PostgreSqlRunStore run, Guid worker, DateTimeOffset now)
    {
        var holder = new OwnerRecord { ProcessId = Environment.ProcessId, Host = Environment.MachineName, StartedAt = now };
        var duration = run.Options.LeaseDuration;
        string s = run.S;
        int? attempt = run.Db.Run("join the run as a worker", idempotent: true, patience: run.OutagePatience, work: connection =>
        {
            // The attempt is the one the live owner runs: its attempt_started is the last one in the log.
            using var command = run.Db.Command(connection, $"""
                INSERT INTO {s}.workers (run_id, worker, attempt, host, pid, expires_at)
                SELECT @run, @worker, a.attempt, @host, @pid, now() + @duration
                FROM (SELECT (convert_from(e.line, 'UTF8')::jsonb ->> 'attempt')::integer AS attempt
                      FROM {s}.events e WHERE e.run_id = @run AND e.type = 'attempt_started' ORDER BY e.seq DESC LIMIT 1) a
                WHERE EXISTS (SELECT 1 FROM {s}.leases l WHERE l.run_id = @run AND l.expires_at > now())
                ON CONFLICT (run_id, worker) DO UPDATE SET expires_at = EXCLUDED.expires_at
                RETURNING attempt
                """);
            command.Parameters.AddWithValue("run", run.RunId);
            command.Parameters.AddWithValue("worker", worker);
            command.Parameters.AddWithValue("host", holder.Host);
            command.Parameters.AddWithValue("pid", holder.ProcessId);
            command.Parameters.AddWithValue("duration", duration);
            return command.ExecuteScalar() is int joined ? joined : (int?)null;
        });

        if (attempt is null)
        {
            throw new RunToolsException(ErrorIds.RunNotRunning, RunToolsErrorCategory.InvalidOperation,
                $"Run '{run.RunId}' has no attempt running (no live owner in {run.Db.Description}), so there is nothing to join. Start or resume it (Resume-Run) on one machine, then run Join-Run on the others.", run.RunId);
        }

        var membership = new PgWorkerMembership(run, worker, holder, attempt.Value);
        try
        {
            membership.WaitForAdmission();
            return membership;
        }
        catch
        {
            membership.Dispose();
            throw;
        }
    }

    public void ThrowIfLost()
    {
        switch (_heartbeat.Check())
        {
            case PgRenewal.Ended:
                throw Ended();
            case PgRenewal.Lost:
                throw Lost();
        }
    }

    // Leaving: its claims are finished or left to the owner (who takes over a claim whose worker is gone).
    public void Dispose() => _heartbeat.StopAndRelease(() => _run.Db.Run("leave the run", idempotent: true, connection =>
    {
        using var command = _run.Db.Command(connection, $"UPDATE {_run.S}.workers SET expires_at = now() WHERE run_id = @run AND worker = @worker");
        command.Parameters.AddWithValue("run", _run.RunId);
        command.Parameters.AddWithValue("worker", _worker);
        command.ExecuteNonQuery();
    }));

    private void WaitForAdmission()
    {
        while (true)
        {
            var (admitted, attemptAlive) = _run.Db.Run("wait to be admitted to the run", idempotent: true, patience: _run.OutagePatience, work: connection =>
            {
                using var command = _run.Db.Command(connection, $"""
                    SELECT coalesce((SELECT admitted FROM {_run.S}.workers WHERE run_id = @run AND worker = @worker), false),
                           EXISTS (SELECT 1 FROM {_run.S}.workers WHERE run_id = @run AND worker = @worker)
                           AND EXISTS (SELECT 1 FROM {_run.S}.leases WHERE run_id = @run AND expires_at > now())
                    """);
                command.Parameters.AddWithValue("run", _run.RunId);
                command.Parameters.AddWithValue("worker", _worker);
                using var reader = command.ExecuteReader();
                reader.Read();
                return (reader.GetBoolean(0), reader.GetBoolean(1));
            });
            if (admitted)
            {
                return;
            }

            if (!attemptAlive)
            {
                throw new RunToolsException(ErrorIds.RunNotRunning, RunToolsErrorCategory.InvalidOperation,
                    $"Attempt {Attempt} of run '{_run.RunId}' ended before it admitted this worker. Join again while the run is running.", _run.RunId);
            }

            ThrowIfLost();
            Thread.Sleep(s_admissionPoll);
        }
    }

    /// <summary>
    /// Extends the registration while it has not expired. An expired one is lost (the owner may
    /// have taken this worker's claims over); one that is gone was removed by the owner ending the
    /// attempt (a stop, not a loss).
    /// </summary>
    private PgRenewal Renew()
    {
        return _run.Db.Run("renew the worker's registration", idempotent: true, patience: _heartbeat.Duration, work: connection =>
        {
            using var command = _run.Db.Command(connection, $"""
                WITH renewed AS (
                    UPDATE {_run.S}.workers SET expires_at = now() + @duration WHERE run_id = @run AND worker = @worker AND expires_at > now() RETURNING 1)
                SELECT CASE WHEN EXISTS (SELECT 1 FROM renewed) THEN 1
                            WHEN EXISTS (SELECT 1 FROM {_run.S}.workers WHERE run_id = @run AND worker = @worker) THEN 0 ELSE -1 END
                """);
            command.Parameters.AddWithValue("run", _run.RunId);
            command.Parameters.AddWithValue("worker", _worker);
            command.Parameters.AddWithValue("duration", _heartbeat.Duration);
            return (int)command.ExecuteScalar()! switch
            {
                1 => PgRenewal.Renewed,
                0 => PgRenewal.Lost,
                _ => PgRenewal.Ended,
            };
        });
    }

    /// <summary>The owner ended the attempt (its registration is gone): the worker stops as at a Stop-Run.</summary>
    private RunStoppedException Ended() => new(_run.RunId, new StopRequest
    {
        RequestedAt = DateTimeOffset.UtcNow,
        RequestedBy = "the run's owner",
        Reason = "the attempt this worker joined has ended",
    });

    private RunToolsException Lost() => new(ErrorIds.NotOwner, RunToolsErrorCategory.InvalidOperation,
        $"This worker's registration in run '{_run.RunId}' expired or the attempt it joined ended: it records nothing more. Items it had claimed are the owner's to finish; join again while the run is running.",
        _run.RunId);
}
