using System;
using System.Collections.Generic;
using System.Linq;
using Npgsql;
using RunTools.Core.Journal;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// Claims, worker registrations and worker events of one run (tables <c>item_claims</c>,
/// <c>workers</c>, <c>worker_events</c>; docs/postgresql-store.md). The owner's claims are held
/// under its lease session, a worker's under its worker id; a claim is fenced the same way as the
/// log: it is taken only while its holder still has the right to work (the owner's lease, a
/// worker's admitted, unexpired registration).
/// </summary>
internal sealed class PgWorkers : IRunWorkers
{
    private readonly PostgreSqlRunStore _store;
    private readonly Func<Guid> _holder;

    /// <param name="holder">The id this process's claims are held under (read when first needed: a lease session exists only once acquired).</param>
    public PgWorkers(PostgreSqlRunStore store, Func<Guid> holder, bool isWorker)
    {
        _store = store;
        _holder = holder;
        IsWorker = isWorker;
    }

    public bool IsWorker { get; }

    public Guid? WorkerId => IsWorker ? _holder() : null;

    private string S => _store.S;

    public bool TryClaim(string step, string key, int attempt)
    {
        // A claim of an earlier attempt is stale (its attempt ended): it may be taken.
        string fence = IsWorker
            ? $"SELECT 1 FROM {S}.workers WHERE run_id = @run AND worker = @holder AND admitted AND expires_at > now()"
            : $"SELECT 1 FROM {S}.leases WHERE run_id = @run AND session = @holder";
        string sql = $"""
            INSERT INTO {S}.item_claims AS c (run_id, step, key, holder, attempt)
            SELECT @run, @step, @key, @holder, @attempt WHERE EXISTS ({fence})
            ON CONFLICT (run_id, step, key) DO UPDATE SET holder = EXCLUDED.holder, attempt = EXCLUDED.attempt, claimed_at = now()
            WHERE c.holder = EXCLUDED.holder OR c.attempt < EXCLUDED.attempt
            """;
        return _store.Db.Run("claim an item", idempotent: true, patience: _store.OutagePatience, work: connection =>
        {
            using var command = _store.Db.Command(connection, sql);
            command.Parameters.AddWithValue("run", _store.RunId);
            command.Parameters.AddWithValue("step", step);
            command.Parameters.AddWithValue("key", key);
            command.Parameters.AddWithValue("holder", _holder());
            command.Parameters.AddWithValue("attempt", attempt);
            return command.ExecuteNonQuery() == 1;
        });
    }

    public (int Waiting, int Admitted) Census() => _store.Db.Run("count the run's workers", idempotent: true, patience: _store.OutagePatience, work: connection =>
    {
        using var command = _store.Db.Command(connection, $"""
            SELECT count(*) FILTER (WHERE NOT admitted), count(*) FILTER (WHERE admitted)
            FROM {S}.workers WHERE run_id = @run AND expires_at > now()
            """);
        command.Parameters.AddWithValue("run", _store.RunId);
        using var reader = command.ExecuteReader();
        reader.Read();
        return ((int)reader.GetInt64(0), (int)reader.GetInt64(1));
    });

    public void Admit(int attempt, IReadOnlyCollection<(string Step, string Key)> running) => _store.Db.Run("admit workers to the run", idempotent: true, patience: _store.OutagePatience, work: connection =>
    {
        // One transaction: a worker is admitted only with the owner's items in flight already claimed.
        using var transaction = connection.BeginTransaction();
        if (running.Count > 0)
        {
            using var claims = _store.Db.Command(connection, $"""
                INSERT INTO {S}.item_claims AS c (run_id, step, key, holder, attempt)
                SELECT @run, u.step, u.key, @holder, @attempt FROM unnest(@steps, @keys) AS u(step, key)
                ON CONFLICT (run_id, step, key) DO UPDATE SET holder = EXCLUDED.holder, attempt = EXCLUDED.attempt, claimed_at = now()
                """, transaction);
            claims.Parameters.AddWithValue("run", _store.RunId);
            claims.Parameters.AddWithValue("holder", _holder());
            claims.Parameters.AddWithValue("attempt", attempt);
            claims.Parameters.AddWithValue("steps", running.Select(r => r.Step).ToArray());
            claims.Parameters.AddWithValue("keys", running.Select(r => r.Key).ToArray());
            claims.ExecuteNonQuery();
        }

        using var admit = _store.Db.Command(connection, $"""
            UPDATE {S}.workers SET admitted = true, attempt = @attempt WHERE run_id = @run AND NOT admitted AND expires_at > now()
            """, transaction);
        admit.Parameters.AddWithValue("run", _store.RunId);
        admit.Parameters.AddWithValue("attempt", attempt);
        admit.ExecuteNonQuery();
        transaction.Commit();
        return running.Count;
    });

    public IReadOnlyList<WorkerEvent> ReadWorkerEvents() => _store.Db.Run("read the workers' events", idempotent: true, patience: _store.OutagePatience, work: connection =>
    {
        var events = new List<WorkerEvent>();
        using var command = _store.Db.Command(connection, $"SELECT worker, wseq, step, key, line FROM {S}.worker_events WHERE run_id = @run ORDER BY worker, wseq");
        command.Parameters.AddWithValue("run", _store.RunId);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            events.Add(new WorkerEvent(reader.GetGuid(0), reader.GetInt64(1), reader.GetString(2), reader.GetString(3), (byte[])reader[4]));
        }

        return (IReadOnlyList<WorkerEvent>)events;
    });

    public void DeleteWorkerEvents(IReadOnlyList<WorkerEvent> transcribed)
    {
        if (transcribed.Count == 0)
        {
            return;
        }

        _store.Db.Run("remove transcribed worker events", idempotent: true, patience: _store.OutagePatience, work: connection =>
        {
            using var command = _store.Db.Command(connection, $"""
                DELETE FROM {S}.worker_events e USING unnest(@workers, @wseqs) AS u(worker, wseq)
                WHERE e.run_id = @run AND e.worker = u.worker AND e.wseq = u.wseq
                """);
            command.Parameters.AddWithValue("run", _store.RunId);
            command.Parameters.AddWithValue("workers", transcribed.Select(e => e.Worker).ToArray());
            command.Parameters.AddWithValue("wseqs", transcribed.Select(e => e.WorkerSequence).ToArray());
            return command.ExecuteNonQuery();
        });
    }

    public IReadOnlyList<string> TakeOverAbandoned(string step, IReadOnlyCollection<string> keys, int attempt)
    {
        if (keys.Count == 0)
        {
            return Array.Empty<string>();
        }

        // The update waits for a worker's event insert in progress on that claim (FOR SHARE), so
        // every event the worker got in is readable once this returns.
        return _store.Db.Run("take over items of workers that are gone", idempotent: true, patience: _store.OutagePatience, work: connection =>
        {
            var taken = new List<string>();
            using var command = _store.Db.Command(connection, $"""
                UPDATE {S}.item_claims c SET holder = @holder, attempt = @attempt, claimed_at = now()
                WHERE c.run_id = @run AND c.step = @step AND c.key = ANY(@keys) AND c.holder <> @holder
                  AND NOT EXISTS (SELECT 1 FROM {S}.workers w WHERE w.run_id = c.run_id AND w.worker = c.holder AND w.expires_at > now())
                RETURNING c.key
                """);
            command.Parameters.AddWithValue("run", _store.RunId);
            command.Parameters.AddWithValue("step", step);
            command.Parameters.AddWithValue("keys", keys.ToArray());
            command.Parameters.AddWithValue("holder", _holder());
            command.Parameters.AddWithValue("attempt", attempt);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                taken.Add(reader.GetString(0));
            }

            return (IReadOnlyList<string>)taken;
        });
    }

    public void Clear() => _store.Db.Run("end the attempt's claims", idempotent: true, patience: _store.OutagePatience, work: connection =>
    {
        using var command = _store.Db.Command(connection, $"""
            DELETE FROM {S}.item_claims WHERE run_id = @run;
            DELETE FROM {S}.workers WHERE run_id = @run;
            """);
        command.Parameters.AddWithValue("run", _store.RunId);
        return command.ExecuteNonQuery();
    });

    public JournalScanResult FollowLog(long afterSequence, IJournalVisitor visitor) => _store.ScanEvents(afterSequence, 0, visitor);
}
