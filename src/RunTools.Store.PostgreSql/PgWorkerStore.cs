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
        return new PgWorkerLog(_run, WorkerId);
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
