using System;
using System.Diagnostics;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// A run as a joined worker sees it (Join-Run, docs/multi-machine.md): it reads the run's log and
/// stop request, registers as a worker of the running attempt instead of taking the lease, claims
/// items, and records its items' events in <c>worker_events</c> (<see cref="PgWorkerLog"/>), never
/// in the run's log or snapshot. Blobs (artifacts of its items) go to the run's blob store.
/// </summary>
internal sealed class PgWorkerStore : IRunStore, IRunSnapshot
{
    private readonly PostgreSqlRunStore _run;
    private readonly PgWorkers _workers;
    private PgWorkerMembership? _membership;
    private long _checkedAt;

    public PgWorkerStore(PostgreSqlRunStore run)
    {
        _run = run;
        _run.WaitsOutOutages = true;
        WorkerId = Guid.NewGuid();
        _workers = new PgWorkers(run, () => WorkerId, isWorker: true);
    }

    public Guid WorkerId { get; }

    public string RunId => _run.RunId;

    public string Location => _run.Location;

    public long LogSizeHint => _run.LogSizeHint;

    public IRunSnapshot Snapshot => this;

    public IRunBlobs Blobs => _run.Blobs;

    public IRunWorkers Workers => _workers;

    bool IRunSnapshot.Exists => ((IRunSnapshot)_run).Exists;

    /// <summary>Registers as a worker of the attempt running now and waits until its owner admits it.</summary>
    public IRunOwnership Acquire(DateTimeOffset now)
    {
        _membership = PgWorkerMembership.Join(_run, WorkerId, now);
        return _membership;
    }

    /// <summary>The owner's leftovers are the owner's to remove.</summary>
    public void RemoveLeftovers()
    {
    }

    public JournalScanResult ScanLog(IJournalVisitor? visitor) => _run.ScanLog(visitor);

    public IRunLog OpenLog(JournalScanResult scan, out string? keptTail)
    {
        keptTail = null;
        return new PgWorkerLog(_run, WorkerId, scan.LastSequence);
    }

    public void EnsureOwnRunId(string recordedId, bool fromLog)
    {
    }

    /// <summary>
    /// The run's stop request; and when the attempt this worker joined has ended (its owner ended
    /// it, or died: its lease expired), a stop in the owner's name, so that the worker stops at
    /// its next boundary as every worker does at a Stop-Run.
    /// </summary>
    public StopRequest? ReadStopRequest()
    {
        long checkedAt = Interlocked.Read(ref _checkedAt);
        if (checkedAt != 0 && Stopwatch.GetElapsedTime(checkedAt) < PostgreSqlRunStore.StopCheckInterval)
        {
            return null;
        }

        long asked = Stopwatch.GetTimestamp();
        var (stop, registered, ownerAlive) = _run.Db.Run("read the run's stop request", idempotent: true, patience: _run.OutagePatience, work: connection =>
        {
            using var command = _run.Db.Command(connection, $"""
                SELECT s.requested_at, s.requested_by, s.reason,
                       EXISTS (SELECT 1 FROM {_run.S}.workers w WHERE w.run_id = @run AND w.worker = @worker),
                       EXISTS (SELECT 1 FROM {_run.S}.leases l WHERE l.run_id = @run AND l.expires_at > now())
                FROM (SELECT 1) AS one LEFT JOIN {_run.S}.stop_requests s ON s.run_id = @run
                """);
            command.Parameters.AddWithValue("run", RunId);
            command.Parameters.AddWithValue("worker", WorkerId);
            using var reader = command.ExecuteReader();
            reader.Read();
            var request = reader.IsDBNull(0) ? null : new StopRequest
            {
                RequestedAt = reader.GetFieldValue<DateTimeOffset>(0),
                RequestedBy = reader.GetString(1),
                Reason = reader.IsDBNull(2) ? null : reader.GetString(2),
            };
            return (request, reader.GetBoolean(3), reader.GetBoolean(4));
        });

        if (stop is not null)
        {
            return stop;
        }

        if (!registered || !ownerAlive)
        {
            return new StopRequest
            {
                RequestedAt = DateTimeOffset.UtcNow,
                RequestedBy = "the run's owner",
                Reason = registered ? "the owner of the attempt this worker joined is gone (its lease expired); resume the run, then join again"
                    : "the attempt this worker joined has ended",
            };
        }

        Interlocked.Exchange(ref _checkedAt, asked);
        return null;
    }

    /// <summary>A stop request is the owner's to clear.</summary>
    public void ClearStopRequest()
    {
    }

    /// <summary>A worker keeps no snapshot: the owner's is the run's.</summary>
    void IRunSnapshot.Replace(RunState state, byte[] serialized)
    {
    }

    RunState IRunSnapshot.ReadStored() => ((IRunSnapshot)_run).ReadStored();
}

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
    private readonly TimeSpan _duration;
    private readonly Timer _heartbeat;
    private readonly Stopwatch _sinceRenewal = Stopwatch.StartNew();
    private readonly object _gate = new();
    private bool _lost;
    private bool _ended;
    private bool _disposed;

    private PgWorkerMembership(PostgreSqlRunStore run, Guid worker, OwnerRecord holder, int attempt, TimeSpan duration)
    {
        _run = run;
        _worker = worker;
        Holder = holder;
        Attempt = attempt;
        _duration = duration;
        var heartbeat = run.Options.HeartbeatInterval ?? TimeSpan.FromTicks(duration.Ticks / 3);
        _heartbeat = new Timer(_ => Renew(), null, heartbeat, heartbeat);
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

        var membership = new PgWorkerMembership(run, worker, holder, attempt.Value, duration);
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
        bool check;
        lock (_gate)
        {
            if (_ended)
            {
                throw Ended();
            }

            if (_lost)
            {
                throw Lost();
            }

            check = _sinceRenewal.Elapsed >= _duration;
        }

        if (check)
        {
            Renew();
            lock (_gate)
            {
                if (_ended)
                {
                    throw Ended();
                }

                if (_lost)
                {
                    throw Lost();
                }
            }
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
            // Leaving: its claims are finished or left to the owner (who takes over a claim whose worker is gone).
            _run.Db.Run("leave the run", idempotent: true, connection =>
            {
                using var command = _run.Db.Command(connection, $"UPDATE {_run.S}.workers SET expires_at = now() WHERE run_id = @run AND worker = @worker");
                command.Parameters.AddWithValue("run", _run.RunId);
                command.Parameters.AddWithValue("worker", _worker);
                command.ExecuteNonQuery();
            });
        }
        catch (RunToolsException)
        {
        }
    }

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

    private void Renew()
    {
        lock (_gate)
        {
            if (_disposed || _lost)
            {
                return;
            }
        }

        try
        {
            // 1: renewed; 0: the registration expired (the owner may have taken this worker's claims
            // over); -1: it is gone, because the owner ended the attempt (a stop, not a loss).
            int renewed = _run.Db.Run("renew the worker's registration", idempotent: true, patience: _duration, work: connection =>
            {
                using var command = _run.Db.Command(connection, $"""
                    WITH renewed AS (
                        UPDATE {_run.S}.workers SET expires_at = now() + @duration WHERE run_id = @run AND worker = @worker AND expires_at > now() RETURNING 1)
                    SELECT CASE WHEN EXISTS (SELECT 1 FROM renewed) THEN 1
                                WHEN EXISTS (SELECT 1 FROM {_run.S}.workers WHERE run_id = @run AND worker = @worker) THEN 0 ELSE -1 END
                    """);
                command.Parameters.AddWithValue("run", _run.RunId);
                command.Parameters.AddWithValue("worker", _worker);
                command.Parameters.AddWithValue("duration", _duration);
                return (int)command.ExecuteScalar()!;
            });
            lock (_gate)
            {
                if (renewed == 1)
                {
                    _sinceRenewal.Restart();
                }
                else if (renewed == 0)
                {
                    _lost = true;
                }
                else
                {
                    _ended = true;
                }
            }
        }
        catch (RunToolsException)
        {
            // Unreachable: ThrowIfLost asks again once a whole registration passed without renewal.
        }
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
