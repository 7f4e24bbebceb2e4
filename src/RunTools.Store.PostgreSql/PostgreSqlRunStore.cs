using System;
using System.IO;
using System.Threading;
using System.Text.Json;
using Npgsql;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// One run in a PostgreSQL store (docs/postgresql-store.md): its log (<see cref="PgRunLog"/>), its
/// snapshot (a row of <c>runs</c>), its ownership (<see cref="PgLease"/>), its blobs
/// (<see cref="PgBlobs"/>) and its stop request (a row of <c>stop_requests</c>). Everything is
/// keyed by run id, so records can never name another run. A local folder holds what a host
/// needs as files: staging files of running steps and local copies of blobs.
/// </summary>
internal sealed class PostgreSqlRunStore : IRunStore, IRunSnapshot
{
    private readonly PostgreSqlStore _owner;
    private Guid? _session;

    internal PostgreSqlRunStore(PostgreSqlStore owner, string runId, string localFolder)
    {
        _owner = owner;
        RunId = runId;
        LocalFolder = localFolder;
        Blobs = new PgBlobs(this, owner.Options.ChunkSize);
    }

    public string RunId { get; }

    public string Location => $"{Db.Description}, run {RunId}";

    public IRunSnapshot Snapshot => this;

    public IRunBlobs Blobs { get; }

    /// <summary>The event log's size as journal lines, estimated from its length (a sum would read every row twice).</summary>
    public long LogSizeHint => Db.Run("size the run's log", idempotent: true, patience: OutagePatience, work: connection =>
    {
        using var command = Db.Command(connection, $"SELECT coalesce(max(seq), 0) FROM {S}.events WHERE run_id = @run");
        command.Parameters.AddWithValue("run", RunId);
        return (long)command.ExecuteScalar()! * 150;
    });

    internal PgDatabase Db => _owner.Db;

    /// <summary>The quoted schema name, for statements.</summary>
    internal string S => _owner.S;

    internal string LocalFolder { get; }

    /// <summary>
    /// How long an owner's statements wait out a server that is down (a restart, a failover): as
    /// long as its lease lasts, since no one else can take the run over before it expires; every
    /// statement of an owner or joined worker does (its reads of the log and snapshot too). Readers
    /// and non-owners give up after the usual retries.
    /// </summary>
    internal TimeSpan? OutagePatience => _session is null && !WaitsOutOutages ? null : _owner.Options.LeaseDuration;

    /// <summary>Set for a joined worker's reads and claims: it waits out an outage as an owner does.</summary>
    internal bool WaitsOutOutages { get; set; }

    /// <summary>The options of the store this run is in (lease duration, heartbeat).</summary>
    internal PostgreSqlStoreOptions Options => _owner.Options;

    /// <summary>The owner's side of claims and workers; claims are held under this attempt's lease session.</summary>
    public IRunWorkers Workers => _workers ??= new PgWorkers(this, () => _session ?? throw new InvalidOperationException("The run's lease is not held."), isWorker: false);

    private PgWorkers? _workers;

    /// <summary>Test seam: called with the connection at "log_commit", "blob_write", "blob_sync" and "blob_commit".</summary>
    internal Action<string, NpgsqlConnection>? FaultPoint { get; set; }

    bool IRunSnapshot.Exists => Db.Run("read the run's snapshot", idempotent: true, patience: OutagePatience, work: connection =>
    {
        using var command = Db.Command(connection, $"SELECT length(snapshot) > 0 FROM {S}.runs WHERE run_id = @run");
        command.Parameters.AddWithValue("run", RunId);
        return command.ExecuteScalar() is true;
    });

    public IRunOwnership Acquire(DateTimeOffset now)
    {
        var lease = PgLease.Acquire(this, now);
        _session = lease.Session;
        return lease;
    }

    /// <summary>A failed blob write leaves nothing in the database (one transaction); only abandoned local staging files remain.</summary>
    public void RemoveLeftovers()
    {
        string staging = ((PgBlobs)Blobs).StagingFolder;
        if (Directory.Exists(staging))
        {
            foreach (string file in Directory.EnumerateFiles(staging))
            {
                Core.Infrastructure.DurableFile.TryDelete(file);
            }
        }
    }

    public JournalScanResult ScanLog(IJournalVisitor? visitor) => ScanEvents(0, 0, visitor);

    /// <summary>Rows cannot tear: there is never a tail to cut off.</summary>
    public IRunLog OpenLog(JournalScanResult scan, out string? keptTail)
    {
        keptTail = null;
        return new PgRunLog(this, scan.LastSequence, scan.ValidLength, _session);
    }

    public void EnsureOwnRunId(string recordedId, bool fromLog)
    {
        // Rows are keyed by run id: they cannot belong to another run.
    }

    /// <summary>
    /// How long an owner trusts a "no stop request" answer: boundaries come once per item, and a
    /// query per boundary would be a second round trip per item beside its commit. A stop is
    /// still seen at the first boundary after this much time, well inside Stop-Run's grace period.
    /// </summary>
    internal static readonly TimeSpan StopCheckInterval = TimeSpan.FromMilliseconds(100);

    // Bumped by every stop request made in this process (Stop-Run inside the run's own script, a time
    // limit): a cached "no stop" answer older than the last bump is not trusted, so such a stop is
    // seen at the very next boundary. One from another process is seen within StopCheckInterval.
    private static long s_stopRequests;

    private long _noStopSeenAt;
    private long _noStopEpoch;

    public StopRequest? ReadStopRequest()
    {
        long seenAt = Interlocked.Read(ref _noStopSeenAt);
        if (_session is not null && seenAt != 0 && Interlocked.Read(ref _noStopEpoch) == Interlocked.Read(ref s_stopRequests)
            && System.Diagnostics.Stopwatch.GetElapsedTime(seenAt) < StopCheckInterval)
        {
            return null;
        }

        long epoch = Interlocked.Read(ref s_stopRequests);
        long asked = System.Diagnostics.Stopwatch.GetTimestamp();
        var request = QueryStopRequest();
        Interlocked.Exchange(ref _noStopEpoch, epoch);
        Interlocked.Exchange(ref _noStopSeenAt, request is null ? asked : 0);
        return request;
    }

    private StopRequest? QueryStopRequest() => Db.Run("read the run's stop request", idempotent: true, patience: OutagePatience, work: connection =>
    {
        using var command = Db.Command(connection, $"SELECT requested_at, requested_by, reason FROM {S}.stop_requests WHERE run_id = @run");
        command.Parameters.AddWithValue("run", RunId);
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? new StopRequest
            {
                RequestedAt = reader.GetFieldValue<DateTimeOffset>(0),
                RequestedBy = reader.GetString(1),
                Reason = reader.IsDBNull(2) ? null : reader.GetString(2),
            }
            : null;
    });

    public void ClearStopRequest() => Db.Run("clear the run's stop request", idempotent: true, connection =>
    {
        using var command = Db.Command(connection, $"DELETE FROM {S}.stop_requests WHERE run_id = @run");
        command.Parameters.AddWithValue("run", RunId);
        command.ExecuteNonQuery();
    });

    /// <summary>Stop-Run: the owner sees it at its next boundary. A newer request replaces an older one.</summary>
    public void RequestStop(StopRequest request)
    {
        WriteStopRequest(request);
        Interlocked.Increment(ref s_stopRequests);
    }

    private void WriteStopRequest(StopRequest request) => Db.Run("request a stop of the run", idempotent: true, connection =>
    {
        using var command = Db.Command(connection, $"""
            INSERT INTO {S}.stop_requests (run_id, requested_at, requested_by, reason) VALUES (@run, @at, @by, @reason)
            ON CONFLICT (run_id) DO UPDATE SET requested_at = EXCLUDED.requested_at, requested_by = EXCLUDED.requested_by, reason = EXCLUDED.reason
            """);
        command.Parameters.AddWithValue("run", RunId);
        command.Parameters.AddWithValue("at", request.RequestedAt);
        command.Parameters.AddWithValue("by", request.RequestedBy);
        command.Parameters.AddWithValue("reason", (object?)request.Reason ?? DBNull.Value);
        command.ExecuteNonQuery();
    });

    /// <summary>The live holder of the run's lease (not expired by the database's clock), or null.</summary>
    internal OwnerRecord? ReadLeaseHolder() => Db.Run("read the run's owner", idempotent: true, patience: OutagePatience, work: connection =>
    {
        using var command = Db.Command(connection, $"SELECT host, pid, started_at FROM {S}.leases WHERE run_id = @run AND expires_at > now()");
        command.Parameters.AddWithValue("run", RunId);
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? new OwnerRecord { Host = reader.GetString(0), ProcessId = reader.GetInt32(1), StartedAt = reader.GetFieldValue<DateTimeOffset>(2) }
            : null;
    });

    /// <summary>
    /// Upserts the snapshot row, fenced by the lease like the log, and never back to an older
    /// position. A holder whose lease was taken over gets NotOwner.
    /// </summary>
    void IRunSnapshot.Replace(RunState state, byte[] serialized)
    {
        string fence = _session is null ? "SELECT 1" : $"SELECT 1 FROM {S}.leases WHERE run_id = @run AND session = @session FOR SHARE";
        int written = Db.Run("write the run's snapshot", idempotent: true, connection =>
        {
            using var command = Db.Command(connection, $"""
                WITH fence AS ({fence})
                INSERT INTO {S}.runs AS r (run_id, name, status, journal_seq, snapshot, updated_at)
                SELECT @run, @name, @status, @seq, @snapshot, now() WHERE EXISTS (SELECT 1 FROM fence)
                ON CONFLICT (run_id) DO UPDATE SET name = EXCLUDED.name, status = EXCLUDED.status, journal_seq = EXCLUDED.journal_seq,
                    snapshot = EXCLUDED.snapshot, updated_at = now()
                WHERE r.journal_seq <= EXCLUDED.journal_seq
                """);
            command.Parameters.AddWithValue("run", RunId);
            if (_session is { } session)
            {
                command.Parameters.AddWithValue("session", session);
            }

            command.Parameters.AddWithValue("name", state.Name);
            command.Parameters.AddWithValue("status", RunFormat.EnumText(state.Status));
            command.Parameters.AddWithValue("seq", state.Journal.Sequence);
            command.Parameters.AddWithValue("snapshot", serialized);
            return command.ExecuteNonQuery();
        }, OutagePatience);

        if (written == 0 && _session is not null && !HoldsLease())
        {
            throw new RunToolsException(ErrorIds.NotOwner, RunToolsErrorCategory.InvalidOperation,
                $"This attempt no longer owns run '{RunId}' (its lease was taken over); its snapshot was not written. The run goes on under its current owner.", RunId);
        }
    }

    RunState IRunSnapshot.ReadStored() => FoldStored(ReadSnapshotRow(), ScanEvents);

    /// <summary>
    /// The stored state: <paramref name="snapshot"/> plus the events after it, read by
    /// <paramref name="scanTail"/> (from the database, or rows a listing already holds), or a
    /// rebuild from the whole log when there is no usable snapshot. Status as stored.
    /// </summary>
    internal RunState FoldStored(RunState? snapshot, Func<long, long, IJournalVisitor?, JournalScanResult> scanTail)
    {
        if (snapshot is not null)
        {
            var reducer = new StateReducer(snapshot);
            var tail = scanTail(snapshot.Journal.Sequence, snapshot.Journal.Length, reducer);
            if (tail.SequenceGaps.Count == 0)
            {
                if (tail.ValidLines > 0)
                {
                    reducer.Finish(tail);
                }

                RunDirectory.EnsureSupportedVersion(RunId, snapshot.FormatVersion);
                return snapshot;
            }
        }

        // No usable snapshot (or a log with gaps after it): the log is the truth.
        var state = new RunState { RunId = RunId };
        var rebuild = new StateReducer(state);
        var scan = ScanEvents(0, 0, rebuild);
        if (scan.ValidLines == 0)
        {
            return snapshot ?? throw new RunToolsException(ErrorIds.RunDamaged, RunToolsErrorCategory.InvalidData,
                $"Run '{RunId}' cannot be read from {Db.Description}: it has neither a usable snapshot nor any readable event. Restore it from a backup or archive.", RunId);
        }

        rebuild.Finish(scan);
        RunDirectory.EnsureSupportedVersion(RunId, state.FormatVersion);
        return state;
    }

    /// <summary>
    /// Feeds the verified events after <paramref name="afterSequence"/> to <paramref name="visitor"/>,
    /// in order, streamed. Each row's locator is its seq; lengths are those of the same lines in a
    /// journal.jsonl. A dropped connection resumes the scan after the last event seen.
    /// </summary>
    internal JournalScanResult ScanEvents(long afterSequence, long startLength, IJournalVisitor? visitor)
    {
        var scan = new PgEventScan(afterSequence, startLength, visitor);
        Db.Run("read the run's events", idempotent: true, patience: OutagePatience, work: connection =>
        {
            using var command = Db.Command(connection, $"SELECT seq, line FROM {S}.events WHERE run_id = @run AND seq > @after ORDER BY seq");
            command.Parameters.AddWithValue("run", RunId);
            command.Parameters.AddWithValue("after", scan.ResumeAfter);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                scan.Add(reader.GetInt64(0), (byte[])reader[1]);
            }
        });

        return scan.Finish();
    }

    private bool HoldsLease() => Db.Run("read the run's owner", idempotent: true, patience: OutagePatience, work: connection =>
    {
        using var command = Db.Command(connection, $"SELECT EXISTS (SELECT 1 FROM {S}.leases WHERE run_id = @run AND session = @session)");
        command.Parameters.AddWithValue("run", RunId);
        command.Parameters.AddWithValue("session", _session!.Value);
        return command.ExecuteScalar() is true;
    });

    private RunState? ReadSnapshotRow() => ParseSnapshot(ReadSnapshotDocument());

    /// <summary>The snapshot row's document (run.json's bytes) as stored, or null when there is no row.</summary>
    internal byte[]? ReadSnapshotDocument() => Db.Run("read the run's snapshot", idempotent: true, patience: OutagePatience, work: connection =>
    {
        using var command = Db.Command(connection, $"SELECT snapshot FROM {S}.runs WHERE run_id = @run");
        command.Parameters.AddWithValue("run", RunId);
        return command.ExecuteScalar() as byte[];
    });

    /// <summary>The snapshot row as stored, or null with why it cannot be used ("missing" when there is none).</summary>
    internal RunState? TryReadSnapshot(out string? failure)
    {
        byte[]? bytes = ReadSnapshotDocument();
        failure = null;
        if (bytes is not { Length: > 0 })
        {
            failure = "missing";
            return null;
        }

        try
        {
            var state = JsonSerializer.Deserialize<RunState>(bytes, RunFormat.JsonOptions);
            failure = state?.FindDefect() ?? (state is null || state.RunId.Length == 0 ? "no run_id" : state.RunId != RunId ? $"it names run '{state.RunId}'" : null);
            return failure is null ? state : null;
        }
        catch (JsonException ex)
        {
            failure = ex.Message;
            return null;
        }
    }

    /// <summary>The snapshot row's document; null when it is empty, unreadable or another run's (the log is read instead).</summary>
    internal RunState? ParseSnapshot(byte[]? bytes)
    {
        if (bytes is not { Length: > 0 })
        {
            return null;
        }

        try
        {
            var state = JsonSerializer.Deserialize<RunState>(bytes, RunFormat.JsonOptions);
            return state is not null && state.FindDefect() is null && state.RunId == RunId ? state : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// Verifies event rows one by one as a journal scan does (seq, parse, crc) and feeds them to a
/// visitor: shared by a run's own reads and a listing that fetched the rows with its snapshots.
/// Lengths are those of the same lines in a journal.jsonl.
/// </summary>
internal sealed class PgEventScan
{
    private readonly JournalScanResult _result;
    private readonly IJournalVisitor? _visitor;
    private readonly JournalLineParser _parser = new();
    private byte[]? _lastLine;
    private ParsedLine _lastParsed;

    public PgEventScan(long afterSequence, long startLength, IJournalVisitor? visitor)
    {
        _result = new JournalScanResult { LastSequence = afterSequence, ValidLength = startLength, FileLength = startLength };
        _visitor = visitor;
        ResumeAfter = afterSequence;
    }

    /// <summary>The last seq seen: a scan that lost its connection resumes after it.</summary>
    public long ResumeAfter { get; private set; }

    public void Add(long seq, byte[] line) => Add((long?)seq, line);

    /// <summary>A journal line that is no row yet (an archived journal's): its seq is its own. Returns why it is damaged, or null.</summary>
    public string? AddLine(byte[] line)
    {
        int corrupt = _result.CorruptLines.Count;
        Add(null, line);
        return _result.CorruptLines.Count > corrupt ? _result.CorruptLines[corrupt].Reason : null;
    }

    private void Add(long? seq, byte[] line)
    {
        long offset = _result.FileLength;
        _result.FileLength += line.Length + 1;
        if (!_parser.TryParse(line, wantTimestamp: true, out var parsed, out string? error) || (seq is { } rowSeq && parsed.Sequence != rowSeq))
        {
            ResumeAfter = seq ?? ResumeAfter;
            _result.CorruptLines.Add(new JournalDefect(offset, line.Length + 1, error ?? $"the row for seq {seq} holds seq {parsed.Sequence}"));
            return;
        }

        ResumeAfter = parsed.Sequence;

        if (parsed.Sequence != _result.LastSequence + 1)
        {
            _result.SequenceGaps.Add($"seq {parsed.Sequence} follows seq {_result.LastSequence}");
        }

        _result.LastSequence = parsed.Sequence;
        _result.ValidLength = _result.FileLength;
        _result.ValidLines++;
        _lastLine = line;
        _lastParsed = parsed;
        _visitor?.Visit(in parsed, parsed.Sequence, line); // the locator is the seq
    }

    public JournalScanResult Finish()
    {
        // Rows are whole or absent: a damaged row is reported, never a torn tail.
        _result.FileLength = _result.ValidLength;
        if (_lastLine is not null)
        {
            _result.LastTimestamp = JournalEvent.ParseTimestamp(_lastParsed.TimestampText(_lastLine));
        }

        return _result;
    }
}
