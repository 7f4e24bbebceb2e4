using System;
using System.Collections.Generic;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// What the run's log (<see cref="PgRunLog"/>) and a worker's log (<see cref="PgWorkerLog"/>) share:
/// an append formats the journal line and keeps it in memory as a row; making it durable inserts
/// every pending row in one fenced statement of the derived log (group commit: callers waiting
/// meanwhile share the next one). After a failed commit nothing more is accepted: nothing after it
/// may count as done.
/// </summary>
/// <typeparam name="TRow">A pending row: what the derived log inserts for one event.</typeparam>
internal abstract class PgPendingLog<TRow> : IRunLog
{
    private readonly JournalLineFormatter _formatter = new();
    private readonly GroupCommit _commit;

    // Appended, not yet committed; guarded by WriteLock.
    private readonly List<TRow> _pending = new();
    private byte[] _lastLine = Array.Empty<byte>();
    private long _lastSequence;
    private long _length;

    // The batch the commit in progress inserts (GroupCommit runs one at a time).
    private TRow[] _batch = Array.Empty<TRow>();
    private RunToolsException? _failure;

    protected PgPendingLog(PostgreSqlRunStore store, long lastSequence, long length)
    {
        Store = store;
        _lastSequence = lastSequence;
        _length = length;
        _commit = new GroupCommit(lastSequence, CaptureBatch, CommitBatch);
    }

    protected PostgreSqlRunStore Store { get; }

    /// <summary>Guards the pending rows, and the parser when a derived log reads under it.</summary>
    protected object WriteLock { get; } = new();

    /// <summary>Parses lines read back (own pending ones, or rows of the run's log); used under <see cref="WriteLock"/>.</summary>
    protected JournalLineParser Parser { get; } = new();

    public long LastSequence => Volatile.Read(ref _lastSequence);

    public long DurableSequence => _commit.Durable;

    public JournalPosition Position => new() { Sequence = LastSequence, Length = Volatile.Read(ref _length) };

    public ReadOnlySpan<byte> LastLine => _lastLine;

    public (long Sequence, long Locator) Append(RunEvent runEvent, DateTimeOffset timestamp)
    {
        lock (WriteLock)
        {
            ThrowIfFailed();
            long sequence = _lastSequence + 1;
            _formatter.Format(sequence, timestamp, runEvent.Type, runEvent.Members);
            byte[] line = _formatter.Line.ToArray();
            var (row, locator) = Pend(sequence, runEvent, line);
            _lastLine = line;
            _pending.Add(row);
            Volatile.Write(ref _length, _length + _formatter.Length);
            Volatile.Write(ref _lastSequence, sequence);
            return (sequence, locator);
        }
    }

    public void MakeDurable(long sequence)
    {
        ThrowIfFailed();
        _commit.Commit(sequence);
    }

    public abstract JournalEvent? ReadEvent(long locator);

    public void Dispose() => _formatter.Dispose();

    /// <summary>The row for an event just formatted (under <see cref="WriteLock"/>; throw to refuse the event), and its locator.</summary>
    protected abstract (TRow Row, long Locator) Pend(long sequence, RunEvent runEvent, byte[] line);

    /// <summary>The sequence number of a pending row.</summary>
    protected abstract long SequenceOf(TRow row);

    /// <summary>Inserts the batch in one fenced statement; throws (NotOwner, StoreUnavailable, ...) when it cannot.</summary>
    protected abstract void Insert(TRow[] batch);

    /// <summary>The pending row with <paramref name="sequence"/>, if it is not committed yet (under <see cref="WriteLock"/>).</summary>
    protected bool TryGetPending(long sequence, out TRow row)
    {
        foreach (var pending in _pending)
        {
            if (SequenceOf(pending) == sequence)
            {
                row = pending;
                return true;
            }
        }

        row = default!;
        return false;
    }

    /// <summary>An event of the run's log, read from its row: the line parsed with its sequence as its locator; null when there is none.</summary>
    protected JournalEvent? ReadRunEvent(long seq)
    {
        byte[]? line = Store.Db.Run("read an event of the run", idempotent: true, patience: Store.OutagePatience, work: connection =>
        {
            using var command = Store.Db.Command(connection, $"SELECT line FROM {Store.S}.events WHERE run_id = @run AND seq = @seq");
            command.Parameters.AddWithValue("run", Store.RunId);
            command.Parameters.AddWithValue("seq", seq);
            return command.ExecuteScalar() as byte[];
        });
        if (line is null)
        {
            return null;
        }

        lock (WriteLock)
        {
            return JournalScanner.ParseEvent(Parser, line, seq);
        }
    }

    /// <summary>Everything appended so far goes in the commit about to start; appends go on meanwhile and wait for the next.</summary>
    private long CaptureBatch()
    {
        lock (WriteLock)
        {
            ThrowIfFailed();
            _batch = _pending.ToArray();
            return _lastSequence;
        }
    }

    private void CommitBatch(long target)
    {
        var batch = _batch;
        _batch = Array.Empty<TRow>();
        try
        {
            if (batch.Length > 0)
            {
                Insert(batch);
            }
        }
        catch (RunToolsException ex)
        {
            // Nothing after a failed commit may count as done: this log records no more.
            Volatile.Write(ref _failure, ex);
            throw;
        }

        lock (WriteLock)
        {
            _pending.RemoveAll(p => SequenceOf(p) <= target);
        }
    }

    private void ThrowIfFailed()
    {
        if (Volatile.Read(ref _failure) is { } failure)
        {
            throw failure;
        }
    }
}
