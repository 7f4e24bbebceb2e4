using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Npgsql;
using NpgsqlTypes;
using RunTools.Core;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// A joined worker's log: its items' events (item_started, item_completed, item_failed, and
/// artifact_added inside an item) as rows of <c>worker_events</c>, each the journal line the worker
/// formatted with its own sequence number. The owner transcribes them into the run's log. Commits
/// are grouped as the run's log's are, and fenced by the claims: a row lands only while the worker
/// still holds its item's claim, so a worker whose claim was taken over (it was presumed dead) or
/// whose attempt ended records nothing more for it. Locators of these events are negative; a
/// non-negative locator is a seq of the run's log (a followed event), read from <c>events</c>.
/// </summary>
internal sealed class PgWorkerLog : IRunLog
{
    private readonly PostgreSqlRunStore _run;
    private readonly Guid _worker;
    private readonly JournalLineFormatter _formatter = new();
    private readonly JournalLineParser _parser = new();
    private readonly object _writeLock = new();
    private readonly GroupCommit _commit;
    private readonly Dictionary<long, byte[]> _lines = new();
    private readonly List<(long Sequence, string Step, string Key, byte[] Line)> _pending = new();
    private (long Sequence, string Step, string Key, byte[] Line)[] _batch = Array.Empty<(long, string, string, byte[])>();
    private byte[] _lastLine = Array.Empty<byte>();
    private long _lastSequence;
    private long _length;
    private RunToolsException? _failure;

    public PgWorkerLog(PostgreSqlRunStore run, Guid worker, long runSequence)
    {
        _run = run;
        _worker = worker;
        _length = 0;
        _ = runSequence;
        _commit = new GroupCommit(0, CaptureBatch, CommitBatch);
    }

    public long LastSequence => Volatile.Read(ref _lastSequence);

    public long DurableSequence => _commit.Durable;

    public JournalPosition Position => new() { Sequence = LastSequence, Length = Volatile.Read(ref _length) };

    public ReadOnlySpan<byte> LastLine => _lastLine;

    public (long Sequence, long Locator) Append(RunEvent runEvent, DateTimeOffset timestamp)
    {
        lock (_writeLock)
        {
            if (Volatile.Read(ref _failure) is { } failure)
            {
                throw failure;
            }

            long sequence = _lastSequence + 1;
            _formatter.Format(sequence, timestamp, runEvent.Type, runEvent.Members);
            byte[] line = _formatter.Line.ToArray();
            if (!_parser.TryParse(line, false, out var parsed, out _) || parsed.Step is null || parsed.Key is null
                || runEvent.Type is not (JournalEventTypes.ItemStarted or JournalEventTypes.ItemCompleted or JournalEventTypes.ItemFailed or JournalEventTypes.ArtifactAdded))
            {
                throw new RunToolsException(ErrorIds.WorkerCannotRecord, RunToolsErrorCategory.InvalidOperation,
                    $"A worker joined to run '{_run.RunId}' records only its items' events; '{runEvent.Type}'{(parsed.Step is null ? string.Empty : $" of step '{parsed.Step}'")} is the owner's to record. Call Add-RunArtifact inside an item on a worker, and leave steps to the owner.", _run.RunId);
            }

            _lastLine = line;
            _lines[-sequence] = line;
            _pending.Add((sequence, parsed.Step, parsed.Key, line));
            Volatile.Write(ref _length, _length + _formatter.Length);
            Volatile.Write(ref _lastSequence, sequence);
            return (sequence, -sequence);
        }
    }

    public void MakeDurable(long sequence)
    {
        if (Volatile.Read(ref _failure) is { } failure)
        {
            throw failure;
        }

        _commit.Commit(sequence);
    }

    public JournalEvent? ReadEvent(long locator)
    {
        if (locator < 0)
        {
            lock (_writeLock)
            {
                return _lines.TryGetValue(locator, out var own) ? JournalScanner.ParseEvent(_parser, own, locator) : null;
            }
        }

        byte[]? line = _run.Db.Run("read an event of the run", idempotent: true, patience: _run.OutagePatience, work: connection =>
        {
            using var command = _run.Db.Command(connection, $"SELECT line FROM {_run.S}.events WHERE run_id = @run AND seq = @seq");
            command.Parameters.AddWithValue("run", _run.RunId);
            command.Parameters.AddWithValue("seq", locator);
            return command.ExecuteScalar() as byte[];
        });
        if (line is null)
        {
            return null;
        }

        lock (_writeLock)
        {
            return JournalScanner.ParseEvent(_parser, line, locator);
        }
    }

    public void Dispose() => _formatter.Dispose();

    private long CaptureBatch()
    {
        lock (_writeLock)
        {
            _batch = _pending.ToArray();
            return _lastSequence;
        }
    }

    private void CommitBatch(long target)
    {
        var batch = _batch;
        _batch = Array.Empty<(long, string, string, byte[])>();
        try
        {
            if (batch.Length > 0)
            {
                Commit(batch);
            }
        }
        catch (RunToolsException ex)
        {
            Volatile.Write(ref _failure, ex);
            throw;
        }

        lock (_writeLock)
        {
            _pending.RemoveAll(p => p.Sequence <= target);
        }
    }

    /// <summary>
    /// One statement: the claims of the batch's items, locked FOR SHARE (a takeover waits for this
    /// commit), and the rows of the items still claimed by this worker. A retry after a dropped
    /// connection finds the rows an earlier try committed by their keys.
    /// </summary>
    private void Commit((long Sequence, string Step, string Key, byte[] Line)[] batch)
    {
        string s = _run.S;
        string sql = $"""
            WITH held AS (
                SELECT c.step, c.key FROM {s}.item_claims c
                WHERE c.run_id = @run AND c.holder = @worker AND (c.step, c.key) IN (SELECT * FROM unnest(@steps, @keys))
                FOR SHARE)
            INSERT INTO {s}.worker_events (run_id, worker, wseq, step, key, line)
            SELECT @run, @worker, u.wseq, u.step, u.key, u.line FROM unnest(@wseqs, @steps, @keys, @lines) AS u(wseq, step, key, line)
            WHERE EXISTS (SELECT 1 FROM held h WHERE h.step = u.step AND h.key = u.key)
            ON CONFLICT (run_id, worker, wseq) DO NOTHING
            """;
        int inserted = _run.Db.Run("record the worker's events", idempotent: true, patience: _run.OutagePatience, work: connection =>
        {
            using var command = _run.Db.Command(connection, sql);
            command.Parameters.AddWithValue("run", _run.RunId);
            command.Parameters.AddWithValue("worker", _worker);
            command.Parameters.AddWithValue("wseqs", batch.Select(b => b.Sequence).ToArray());
            command.Parameters.AddWithValue("steps", batch.Select(b => b.Step).ToArray());
            command.Parameters.AddWithValue("keys", batch.Select(b => b.Key).ToArray());
            command.Parameters.Add(new NpgsqlParameter("lines", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = batch.Select(b => b.Line).ToArray() });
            return command.ExecuteNonQuery();
        });

        if (inserted == batch.Length)
        {
            return;
        }

        // Fewer rows: an earlier try committed some (a dropped connection), or claims were taken over.
        long stored = _run.Db.Run("check the worker's recorded events", idempotent: true, patience: _run.OutagePatience, work: connection =>
        {
            using var command = _run.Db.Command(connection, $"SELECT count(*) FROM {s}.worker_events WHERE run_id = @run AND worker = @worker AND wseq = ANY(@wseqs)");
            command.Parameters.AddWithValue("run", _run.RunId);
            command.Parameters.AddWithValue("worker", _worker);
            command.Parameters.AddWithValue("wseqs", batch.Select(b => b.Sequence).ToArray());
            return (long)command.ExecuteScalar()!;
        });
        if (stored == batch.Length)
        {
            return;
        }

        var keys = string.Join(", ", batch.Select(b => b.Key).Distinct().Take(5));
        throw new RunToolsException(ErrorIds.NotOwner, RunToolsErrorCategory.InvalidOperation,
            $"This worker no longer holds item(s) {keys} of run '{_run.RunId}': the attempt it joined ended, or the owner took them over after this worker's registration expired. What it did for them does not count as recorded; the owner's in-doubt policy decides them.",
            _run.RunId);
    }
}
