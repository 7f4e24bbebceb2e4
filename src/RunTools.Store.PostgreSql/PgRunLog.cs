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
/// A run's log as rows of <c>events</c> keyed (run_id, seq), each row's <c>line</c> the exact
/// journal line (crc included) journal.jsonl would hold. An append is kept in memory; making it
/// durable is one INSERT of every pending event, committed as one statement (group commit: the
/// callers waiting meanwhile share the next one). The insert is fenced by the owner's lease: it
/// lands only while the lease row still names this attempt's session, so an owner whose lease was
/// taken over can never add events after the new owner's.
/// </summary>
internal sealed class PgRunLog : IRunLog
{
    private readonly PostgreSqlRunStore _store;
    private readonly Guid? _session;
    private readonly JournalLineFormatter _formatter = new();
    private readonly JournalLineParser _readParser = new();
    private readonly object _writeLock = new();
    private readonly GroupCommit _commit;

    // Appended, not yet committed; guarded by _writeLock.
    private readonly List<(long Sequence, string Type, byte[] Line)> _pending = new();
    private byte[] _lastLine = Array.Empty<byte>();
    private long _lastSequence;
    private long _length;

    // The batch the commit in progress inserts (GroupCommit runs one at a time).
    private (long Sequence, string Type, byte[] Line)[] _batch = Array.Empty<(long, string, byte[])>();
    private RunToolsException? _failure;

    /// <param name="session">The owner's lease session that fences every commit; null only for a run being created.</param>
    public PgRunLog(PostgreSqlRunStore store, long lastSequence, long length, Guid? session)
    {
        _store = store;
        _session = session;
        _lastSequence = lastSequence;
        _length = length;
        _commit = new GroupCommit(lastSequence, CaptureBatch, CommitBatch);
    }

    /// <summary>For a run being created: the first commit fails with RunExists when another run has the id.</summary>
    public bool Creating { get; init; }

    public long LastSequence => Volatile.Read(ref _lastSequence);

    public long DurableSequence => _commit.Durable;

    public JournalPosition Position => new() { Sequence = LastSequence, Length = Volatile.Read(ref _length) };

    public ReadOnlySpan<byte> LastLine => _lastLine;

    public (long Sequence, long Locator) Append(RunEvent runEvent, DateTimeOffset timestamp)
    {
        lock (_writeLock)
        {
            ThrowIfFailed();
            long sequence = _lastSequence + 1;
            _formatter.Format(sequence, timestamp, runEvent.Type, runEvent.Members);
            _lastLine = _formatter.Line.ToArray();
            _pending.Add((sequence, runEvent.Type, _lastLine));
            Volatile.Write(ref _length, _length + _formatter.Length);
            Volatile.Write(ref _lastSequence, sequence);

            // The locator is the sequence number: ReadEvent finds the row by it.
            return (sequence, sequence);
        }
    }

    public void MakeDurable(long sequence)
    {
        ThrowIfFailed();
        _commit.Commit(sequence);
    }

    /// <summary>Everything appended so far goes in the commit about to start; appends go on meanwhile and wait for the next.</summary>
    private long CaptureBatch()
    {
        lock (_writeLock)
        {
            ThrowIfFailed();
            _batch = _pending.ToArray();
            return _lastSequence;
        }
    }

    private void CommitBatch(long target)
    {
        var batch = _batch;
        _batch = Array.Empty<(long, string, byte[])>();
        try
        {
            if (batch.Length > 0)
            {
                Commit(batch);
            }
        }
        catch (RunToolsException ex)
        {
            // Nothing after a failed commit may count as done: this attempt records no more.
            Volatile.Write(ref _failure, ex);
            throw;
        }

        lock (_writeLock)
        {
            _pending.RemoveAll(p => p.Sequence <= target);
        }
    }

    public JournalEvent? ReadEvent(long locator)
    {
        lock (_writeLock)
        {
            foreach (var pending in _pending)
            {
                if (pending.Sequence == locator)
                {
                    return JournalScanner.ParseEvent(_readParser, pending.Line, locator);
                }
            }
        }

        byte[]? line = _store.Db.Run("read an event of the run", idempotent: true, connection =>
        {
            using var command = _store.Db.Command(connection, $"SELECT line FROM {_store.S}.events WHERE run_id = @run AND seq = @seq");
            command.Parameters.AddWithValue("run", _store.RunId);
            command.Parameters.AddWithValue("seq", locator);
            return command.ExecuteScalar() as byte[];
        });
        if (line is null)
        {
            return null;
        }

        lock (_readParser)
        {
            return JournalScanner.ParseEvent(_readParser, line, locator);
        }
    }

    public void Dispose() => _formatter.Dispose();

    /// <summary>
    /// One statement: the lease check (FOR SHARE, so a takeover waits until this commit is done)
    /// and the insert. Retried after a dropped connection; rows of an earlier try that did commit
    /// are recognised by their bytes, so a retry neither loses nor doubles an event.
    /// </summary>
    private void Commit((long Sequence, string Type, byte[] Line)[] batch)
    {
        string s = _store.S;
        string fence = _session is null
            ? "SELECT 1"
            : $"SELECT 1 FROM {s}.leases WHERE run_id = @run AND session = @session FOR SHARE";
        // A run's first event brings a placeholder row of runs (no snapshot yet, read by folding its
        // events), so that a creation cut short before its first snapshot is still listed.
        string placeholder = Creating && batch[0].Sequence == 1
            ? $", placeholder AS (INSERT INTO {s}.runs (run_id, name, status, journal_seq, snapshot) VALUES (@run, '', 'created', 0, ''::bytea) ON CONFLICT (run_id) DO NOTHING)"
            : string.Empty;
        string sql = $"""
            WITH fence AS ({fence}){placeholder}
            INSERT INTO {s}.events (run_id, seq, type, line)
            SELECT @run, u.seq, u.type, u.line FROM unnest(@seqs, @types, @lines) AS u(seq, type, line)
            WHERE EXISTS (SELECT 1 FROM fence)
            ON CONFLICT (run_id, seq) DO NOTHING
            """;
        var seqs = batch.Select(b => b.Sequence).ToArray();
        int inserted = _store.Db.Run("record the run's events", idempotent: true, connection =>
        {
            _store.FaultPoint?.Invoke("log_commit", connection);
            using var command = _store.Db.Command(connection, sql);
            command.Parameters.AddWithValue("run", _store.RunId);
            if (_session is { } session)
            {
                command.Parameters.AddWithValue("session", session);
            }

            command.Parameters.AddWithValue("seqs", seqs);
            command.Parameters.AddWithValue("types", batch.Select(b => b.Type).ToArray());
            command.Parameters.Add(new NpgsqlParameter("lines", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = batch.Select(b => b.Line).ToArray() });
            return command.ExecuteNonQuery();
        }, _store.OutagePatience);

        if (inserted != batch.Length)
        {
            ReconcileShortInsert(batch, seqs);
        }
    }

    /// <summary>Fewer rows than events: an earlier try committed them (fine), the lease is gone, or another writer has those seqs.</summary>
    private void ReconcileShortInsert((long Sequence, string Type, byte[] Line)[] batch, long[] seqs)
    {
        var stored = _store.Db.Run("check the run's recorded events", idempotent: true, patience: _store.OutagePatience, work: connection =>
        {
            var lines = new Dictionary<long, byte[]>();
            using var command = _store.Db.Command(connection, $"SELECT seq, line FROM {_store.S}.events WHERE run_id = @run AND seq = ANY(@seqs)");
            command.Parameters.AddWithValue("run", _store.RunId);
            command.Parameters.AddWithValue("seqs", seqs);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                lines[reader.GetInt64(0)] = (byte[])reader[1];
            }

            return lines;
        });

        bool allOurs = batch.All(b => stored.TryGetValue(b.Sequence, out var line) && line.AsSpan().SequenceEqual(b.Line));
        if (allOurs)
        {
            return;
        }

        if (Creating && batch[0].Sequence == 1 && stored.ContainsKey(1))
        {
            throw new RunToolsException(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
                $"A run '{_store.RunId}' already exists in {_store.Db.Description}. Choose another -RunId, or resume that run with Resume-Run.", _store.RunId);
        }

        var holder = _session is null ? null : _store.ReadLeaseHolder();
        throw new RunToolsException(ErrorIds.NotOwner, RunToolsErrorCategory.InvalidOperation,
            $"This attempt no longer owns run '{_store.RunId}'" + (holder is null ? string.Empty : $" (process {holder} took it over after this attempt's lease expired)")
            + $": events {batch[0].Sequence}..{batch[batch.Length - 1].Sequence} were not recorded, so their units do not count as done. The run goes on under its current owner; nothing recorded before is lost.",
            _store.RunId);
    }

    private void ThrowIfFailed()
    {
        if (Volatile.Read(ref _failure) is { } failure)
        {
            throw failure;
        }
    }
}
