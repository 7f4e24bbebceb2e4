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
internal sealed class PgWorkerLog : PgPendingLog<PgWorkerLog.Row>
{
    private readonly Guid _worker;

    // This worker's own lines by their (negative) locators: a worker reads back what it recorded.
    private readonly Dictionary<long, byte[]> _lines = new();

    public PgWorkerLog(PostgreSqlRunStore run, Guid worker)
        : base(run, 0, 0)
    {
        _worker = worker;
    }

    public override JournalEvent? ReadEvent(long locator)
    {
        if (locator < 0)
        {
            lock (WriteLock)
            {
                return _lines.TryGetValue(locator, out var own) ? JournalScanner.ParseEvent(Parser, own, locator) : null;
            }
        }

        return ReadRunEvent(locator);
    }

    /// <summary>Only an item's events are a worker's to record; the row names the item, whose claim fences it.</summary>
    protected override (Row Row, long Locator) Pend(long sequence, RunEvent runEvent, byte[] line)
    {
        if (!Parser.TryParse(line, false, out var parsed, out _) || parsed.Step is null || parsed.Key is null
            || runEvent.Type is not (JournalEventTypes.ItemStarted or JournalEventTypes.ItemCompleted or JournalEventTypes.ItemFailed or JournalEventTypes.ArtifactAdded))
        {
            throw new RunToolsException(ErrorIds.WorkerCannotRecord, RunToolsErrorCategory.InvalidOperation,
                $"A worker joined to run '{Store.RunId}' records only its items' events; '{runEvent.Type}'{(parsed.Step is null ? string.Empty : $" of step '{parsed.Step}'")} is the owner's to record. Call Add-RunArtifact inside an item on a worker, and leave steps to the owner.", Store.RunId);
        }

        _lines[-sequence] = line;
        return (new Row(sequence, parsed.Step, parsed.Key, line), -sequence);
    }

    protected override long SequenceOf(Row row) => row.Sequence;

    protected override void Insert(Row[] batch) => Commit(batch);

    /// <summary>One event's row of <c>worker_events</c>.</summary>
    internal readonly record struct Row(long Sequence, string Step, string Key, byte[] Line);

    /// <summary>
    /// One statement: the claims of the batch's items, locked FOR SHARE (a takeover waits for this
    /// commit), and the rows of the items still claimed by this worker. A retry after a dropped
    /// connection finds the rows an earlier try committed by their keys.
    /// </summary>
    private void Commit(Row[] batch)
    {
        string s = Store.S;
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
        int inserted = Store.Db.Run("record the worker's events", idempotent: true, patience: Store.OutagePatience, work: connection =>
        {
            using var command = Store.Db.Command(connection, sql);
            command.Parameters.AddWithValue("run", Store.RunId);
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
        long stored = Store.Db.Run("check the worker's recorded events", idempotent: true, patience: Store.OutagePatience, work: connection =>
        {
            using var command = Store.Db.Command(connection, $"SELECT count(*) FROM {s}.worker_events WHERE run_id = @run AND worker = @worker AND wseq = ANY(@wseqs)");
            command.Parameters.AddWithValue("run", Store.RunId);
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
            $"This worker no longer holds item(s) {keys} of run '{Store.RunId}': the attempt it joined ended, or the owner took them over after this worker's registration expired. What it did for them does not count as recorded; the owner's in-doubt policy decides them.",
            Store.RunId);
    }
}
