using System;
using System.Collections.Generic;
using System.IO;
using Npgsql;
using RunTools.Core;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// A run of a PostgreSQL store as the cmdlets act on it (Core's <see cref="IDatabaseRun"/>):
/// reads, stop requests, stored copies, removal. Each call is its own short statement; an attempt
/// gets its own <see cref="PostgreSqlRunStore"/> from <see cref="OpenStore"/>.
/// </summary>
internal sealed class PgDatabaseRun : IDatabaseRun
{
    private const int EventPage = 2000;

    /// <summary>The run's tables besides blobs, deleted with it.</summary>
    private static readonly string[] s_runTables = { "events", "runs", "stop_requests", "leases", "item_claims", "workers", "worker_events" };
    private readonly PostgreSqlStore _owner;
    private readonly PostgreSqlRunStore _reader;

    public PgDatabaseRun(PostgreSqlStore owner, string runId, string localFolder, string rootDisplay)
    {
        _owner = owner;
        RunId = runId;
        LocalFolder = localFolder;
        RootDisplay = rootDisplay;
        _reader = new PostgreSqlRunStore(owner, runId, localFolder);
    }

    public string RunId { get; }

    public string LocalFolder { get; }

    public string RootDisplay { get; }

    private PgDatabase Db => _owner.Db;

    private string S => _owner.S;

    public IRunStore OpenStore(Action<string>? crashPoint) => new PostgreSqlRunStore(_owner, RunId, LocalFolder);

    public IRunStore OpenWorkerStore() => new PgWorkerStore(new PostgreSqlRunStore(_owner, RunId, LocalFolder));

    public RunState ReadStoredState() => ((IRunSnapshot)_reader).ReadStored();

    public RunState? TryReadSnapshot(out string? failure) => _reader.TryReadSnapshot(out failure);

    public JournalScanResult ScanTail(long afterSequence, long startLength, IJournalVisitor? visitor) => _reader.ScanEvents(afterSequence, startLength, visitor);

    /// <summary>A page of rows per short query, so that no connection is held while the caller works on the events.</summary>
    public IEnumerable<JournalEvent> ReadEvents(long afterSequence)
    {
        var parser = new JournalLineParser();
        long after = Math.Max(0, afterSequence);
        while (true)
        {
            var page = Db.Run("read the run's events", idempotent: true, connection =>
            {
                using var command = Db.Command(connection, $"SELECT seq, line FROM {S}.events WHERE run_id = @run AND seq > @after ORDER BY seq LIMIT {EventPage}");
                command.Parameters.AddWithValue("run", RunId);
                command.Parameters.AddWithValue("after", after);
                using var reader = command.ExecuteReader();
                var rows = new List<(long Seq, byte[] Line)>();
                while (reader.Read())
                {
                    rows.Add((reader.GetInt64(0), (byte[])reader[1]));
                }

                return rows;
            });

            foreach (var (seq, line) in page)
            {
                after = seq;
                if (JournalScanner.ParseEvent(parser, line, seq - 1) is { } parsed && parsed.Sequence == seq)
                {
                    yield return parsed;
                }
            }

            if (page.Count < EventPage)
            {
                yield break;
            }
        }
    }

    public byte[]? ReadSnapshotDocument() => _reader.ReadSnapshotDocument();

    /// <summary>Measured and bounded in one statement, so rows appended later (there are none while the caller holds the lease) are not read.</summary>
    public Stream OpenJournal(out long length)
    {
        var (last, bytes) = Db.Run("measure the run's events", idempotent: true, connection =>
        {
            using var command = Db.Command(connection, $"SELECT coalesce(max(seq), 0), coalesce(sum(length(line) + 1), 0)::bigint FROM {S}.events WHERE run_id = @run");
            command.Parameters.AddWithValue("run", RunId);
            using var reader = command.ExecuteReader();
            reader.Read();
            return (reader.GetInt64(0), reader.GetInt64(1));
        });
        length = bytes;
        return new PgJournalStream(_reader, last);
    }

    public IReadOnlyList<StoredBlob> ListBlobs() => ((PgBlobs)_reader.Blobs).List();

    public Stream? OpenStoredCopy(string sha256, out long size) => ((PgBlobs)_reader.Blobs).OpenStoredCopy(sha256, out size);

    public OwnerRecord? ReadHolder() => _reader.ReadLeaseHolder();

    public StopRequest? ReadStopRequest() => _reader.ReadStopRequest();

    public void RequestStop(StopRequest request) => _reader.RequestStop(request);

    public byte[]? ReadStoredCopy(string sha256) => ((PgBlobs)_reader.Blobs).ReadStoredCopy(sha256);

    public void WriteStoredCopy(byte[] content) => ((PgBlobs)_reader.Blobs).WriteStoredCopy(content);

    /// <summary>
    /// Takes the lease (RunLocked naming a live holder), then deletes the run's rows in one
    /// transaction fenced by that lease; the contents no other run names go in a second statement.
    /// </summary>
    public void Delete()
    {
        var store = new PostgreSqlRunStore(_owner, RunId, LocalFolder);
        using var ownership = (PgLease)store.Acquire(DateTimeOffset.UtcNow);
        long[] contents = Db.Run("remove the run", idempotent: true, connection =>
        {
            using var transaction = connection.BeginTransaction();
            long[] ids = DeleteRows(_owner, connection, transaction, RunId, ownership.Session, "removed", keepLease: false);
            transaction.Commit();
            return ids;
        });

        DropUnnamedContents(_owner, contents);
    }

    /// <summary>
    /// Deletes the run's rows in the caller's transaction, fenced by the lease <paramref name="session"/>
    /// holds (NotOwner when it was taken over meanwhile, saying nothing was <paramref name="done"/>).
    /// Returns the contents its blobs named, for <see cref="DropUnnamedContents"/> once committed.
    /// </summary>
    internal static long[] DeleteRows(PostgreSqlStore owner, NpgsqlConnection connection, NpgsqlTransaction transaction, string runId, Guid session, string done, bool keepLease)
    {
        var db = owner.Db;
        string s = owner.S;
        using (var fence = db.Command(connection, $"SELECT 1 FROM {s}.leases WHERE run_id = @run AND session = @session FOR UPDATE", transaction))
        {
            fence.Parameters.AddWithValue("run", runId);
            fence.Parameters.AddWithValue("session", session);
            if (fence.ExecuteScalar() is null)
            {
                throw new RunToolsException(ErrorIds.NotOwner, RunToolsErrorCategory.InvalidOperation,
                    $"Run '{runId}' was taken over by another owner while it was being {done}; nothing was {done}. Check it with Get-Run.", runId);
            }
        }

        var ids = new List<long>();
        using (var blobs = db.Command(connection, $"DELETE FROM {s}.blobs WHERE run_id = @run RETURNING content_id", transaction))
        {
            blobs.Parameters.AddWithValue("run", runId);
            using var reader = blobs.ExecuteReader();
            while (reader.Read())
            {
                ids.Add(reader.GetInt64(0));
            }
        }

        foreach (string table in s_runTables)
        {
            if (keepLease && table == "leases")
            {
                continue;
            }

            using var delete = db.Command(connection, $"DELETE FROM {s}.{table} WHERE run_id = @run", transaction);
            delete.Parameters.AddWithValue("run", runId);
            delete.ExecuteNonQuery();
        }

        return ids.ToArray();
    }

    /// <summary>
    /// Contents no run names any more. A writer that names one of them at the same moment wins: its
    /// reference makes this statement fail (foreign key), and the content stays.
    /// </summary>
    internal static void DropUnnamedContents(PostgreSqlStore owner, long[] ids)
    {
        if (ids.Length == 0)
        {
            return;
        }

        owner.Db.Run("drop the run's unshared blob contents", idempotent: true, connection =>
        {
            using var command = owner.Db.Command(connection, $"""
                WITH gone AS (
                    DELETE FROM {owner.S}.blob_contents c WHERE c.id = ANY (@ids) AND NOT EXISTS (SELECT 1 FROM {owner.S}.blobs b WHERE b.content_id = c.id)
                    RETURNING c.id)
                DELETE FROM {owner.S}.blob_chunks WHERE content_id IN (SELECT id FROM gone)
                """);
            command.Parameters.AddWithValue("ids", ids);
            try
            {
                command.ExecuteNonQuery();
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.ForeignKeyViolation)
            {
                // Named again meanwhile: kept. The run itself is already gone.
            }
        });
    }
}
