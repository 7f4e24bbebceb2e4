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
internal sealed class PgRunLog : PgPendingLog<PgRunLog.Row>
{
    private readonly Guid? _session;

    /// <param name="session">The owner's lease session that fences every commit; null only for a run being created.</param>
    public PgRunLog(PostgreSqlRunStore store, long lastSequence, long length, Guid? session)
        : base(store, lastSequence, length)
    {
        _session = session;
    }

    /// <summary>For a run being created: the first commit fails with RunExists when another run has the id.</summary>
    public bool Creating { get; init; }

    public override JournalEvent? ReadEvent(long locator)
    {
        lock (WriteLock)
        {
            if (TryGetPending(locator, out var pending))
            {
                return JournalScanner.ParseEvent(Parser, pending.Line, locator);
            }
        }

        // The locator is the sequence number: the event's row.
        return ReadRunEvent(locator);
    }

    protected override (Row Row, long Locator) Pend(long sequence, RunEvent runEvent, byte[] line) => (new Row(sequence, runEvent.Type, line), sequence);

    protected override long SequenceOf(Row row) => row.Sequence;

    protected override void Insert(Row[] batch) => Commit(batch);

    /// <summary>One event's row of <c>events</c>.</summary>
    internal readonly record struct Row(long Sequence, string Type, byte[] Line);

    /// <summary>
    /// One statement: the lease check (FOR SHARE, so a takeover waits until this commit is done)
    /// and the insert. Retried after a dropped connection; rows of an earlier try that did commit
    /// make the retry's insert fail as a whole and are recognised by their bytes, so a retry
    /// neither loses nor doubles an event.
    /// </summary>
    private void Commit(Row[] batch)
    {
        string s = Store.S;
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
            """;
        var seqs = batch.Select(b => b.Sequence).ToArray();
        int inserted = Store.Db.Run("record the run's events", idempotent: true, connection =>
        {
            Store.FaultPoint?.Invoke("log_commit", connection);
            using var command = Store.Db.Command(connection, sql);
            command.Parameters.AddWithValue("run", Store.RunId);
            if (_session is { } session)
            {
                command.Parameters.AddWithValue("session", session);
            }

            command.Parameters.AddWithValue("seqs", seqs);
            command.Parameters.AddWithValue("types", batch.Select(b => b.Type).ToArray());
            command.Parameters.Add(new NpgsqlParameter("lines", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = batch.Select(b => b.Line).ToArray() });
            try
            {
                return command.ExecuteNonQuery();
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                // A seq is taken: an earlier try of this commit landed (its answer was lost), or
                // another writer has it. Nothing of this statement was inserted; the rows decide.
                // (A caught violation on this rare path, not ON CONFLICT's speculative insertion of
                // every row on every commit.)
                return -1;
            }
        }, Store.OutagePatience);

        if (inserted != batch.Length)
        {
            ReconcileShortInsert(batch, seqs);
        }
    }

    /// <summary>Fewer rows than events: an earlier try committed them (fine), the lease is gone, or another writer has those seqs.</summary>
    private void ReconcileShortInsert(Row[] batch, long[] seqs)
    {
        var stored = Store.Db.Run("check the run's recorded events", idempotent: true, patience: Store.OutagePatience, work: connection =>
        {
            var lines = new Dictionary<long, byte[]>();
            using var command = Store.Db.Command(connection, $"SELECT seq, line FROM {Store.S}.events WHERE run_id = @run AND seq = ANY(@seqs)");
            command.Parameters.AddWithValue("run", Store.RunId);
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
                $"A run '{Store.RunId}' already exists in {Store.Db.Description}. Choose another -RunId, or resume that run with Resume-Run.", Store.RunId);
        }

        var holder = _session is null ? null : Store.ReadLeaseHolder();
        throw new RunToolsException(ErrorIds.NotOwner, RunToolsErrorCategory.InvalidOperation,
            $"This attempt no longer owns run '{Store.RunId}'" + (holder is null ? string.Empty : $" (process {holder} took it over after this attempt's lease expired)")
            + $": events {batch[0].Sequence}..{batch[batch.Length - 1].Sequence} were not recorded, so their units do not count as done. The run goes on under its current owner; nothing recorded before is lost.",
            Store.RunId);
    }
}
