using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.ExceptionServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Npgsql;
using NpgsqlTypes;
using RunTools.Core;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// Lists a database's runs for Get-Run: a query per page returns each matching run's snapshot row, its
/// live lease and stop request, and the events after its snapshot; each run is folded by the
/// store's own reader (<see cref="PostgreSqlRunStore.FoldStored"/>). Filters on id, name and
/// status run in SQL where a wildcard translates to LIKE; the caller checks every run again.
/// </summary>
internal sealed class PgRunCatalog : IRunCatalog, IRunImporter
{
    private readonly PostgreSqlStore _store;
    private readonly RootLocation _root;

    public PgRunCatalog(PostgreSqlStore store, RootLocation root)
    {
        _store = store;
        _root = root;
    }

    public string Display => _root.Display;

    /// <summary>Runs folded together on all cores while the next ones are read (a property so that tests cross batches and pages with few runs).</summary>
    internal int BatchSize { get; set; } = 256;

    /// <summary>Runs per query: whole batches, enough that a query's round trip is a small part of a page.</summary>
    private int PageSize => 4 * BatchSize;

    /// <summary>Tests: called before each page's query, with the connection it runs on.</summary>
    internal Action<NpgsqlConnection>? BeforePage { get; set; }

    public RunDirectory OpenRun(string runId)
    {
        string local = LocalFolders.ForRun(_root, Core.RunId.Validate(runId));
        _store.OpenRun(runId, local); // RunNotFound when the database has no such run
        return Run(runId, local);
    }

    /// <summary>
    /// The run's rows first (the creation), then its stored copies, then the local copies: a crash
    /// between leaves a run whose copies Test-Run reports missing, which a resume given the script
    /// (and config) stores again.
    /// </summary>
    public RunDirectory CreateRun(RunCreateOptions options)
    {
        var now = DateTimeOffset.UtcNow;
        string id = options.RunId ?? Core.RunId.Generate(RunsRoot.ValidateName(options.Name), now);
        string local = LocalFolders.ForRun(_root, Core.RunId.Validate(id));
        var created = _store.CreateRun(CopyWithId(options, id), local, () => now);
        var run = Run(created.RunId, local);
        DurableFile.CreateDirectory(local);
        RunsRoot.WriteConfigFiles(local, options.Config);
        if (options.Parameters is { } parameters)
        {
            RunsRoot.WriteParametersFile(local, parameters);
        }

        DurableFile.WriteAtomic(Path.Combine(local, RunFormat.ScriptFile), options.Script);
        run.SaveStoredCopies(run.ReadState());
        return run;
    }

    /// <summary>Import-RunArchive into the database: the whole run in one transaction (<see cref="PgRunImport"/>).</summary>
    public RunDirectory ImportRun(IArchivedRun run, bool replace)
    {
        string id = Core.RunId.Validate(run.RunId);
        string local = LocalFolders.ForRun(_root, id);
        new PgRunImport(_store, id, local).Write(run, replace, Display);
        return Run(id, local);
    }

    private RunDirectory Run(string runId, string local) => new(local, runId, new PgDatabaseRun(_store, runId, local, Display));

    private static RunCreateOptions CopyWithId(RunCreateOptions options, string id) => new()
    {
        Name = options.Name,
        RunId = id,
        Config = options.Config,
        Parameters = options.Parameters,
        Script = options.Script,
        ScriptSourcePath = options.ScriptSourcePath,
        DeclaredSteps = options.DeclaredSteps,
        Migrated = options.Migrated,
        SourceFormat = options.SourceFormat,
    };

    public IEnumerable<T> EnumerateRuns<T>(RunFilter filter, Func<StoredRunListing, T> project)
    {
        // Rows are read on a background task; each batch is folded and projected on all cores while
        // the next one is read and the caller writes out the previous one (RunsRoot.EnumerateRuns's shape).
        using var batches = new BlockingCollection<Task<List<T>>>(boundedCapacity: 2);
        using var stop = new CancellationTokenSource();
        ExceptionDispatchInfo? failure = null;
        var reading = Task.Run(() =>
        {
            try
            {
                // The folder name hashes the root: once per listing, not once per run.
                string localFolders = LocalFolders.ForStore(_root);
                ReadBatches(filter, batch => batches.Add(Task.Run(() => ProjectBatch(batch, localFolders, project)), stop.Token));
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                // The caller stopped early (Select-Object -First): nothing more is wanted.
            }
            catch (Exception ex)
            {
                failure = ExceptionDispatchInfo.Capture(ex);
            }
            finally
            {
                batches.CompleteAdding();
            }
        });

        try
        {
            foreach (var projecting in batches.GetConsumingEnumerable())
            {
                List<T> batch;
                try
                {
                    batch = projecting.GetAwaiter().GetResult();
                }
                catch (AggregateException ex) when (ex.InnerExceptions.Count > 0)
                {
                    // Parallel.For wraps what a projection threw; the caller sees the first as if called directly.
                    ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
                    throw;
                }

                foreach (var item in batch)
                {
                    yield return item;
                }
            }
        }
        finally
        {
            stop.Cancel();
            reading.Wait();
        }

        failure?.Throw();
    }

    /// <summary>One run's rows as the query returned them.</summary>
    private sealed class StoredRun
    {
        public StoredRun(string runId, byte[]? snapshot, long journalSeq, bool live, bool stopping)
        {
            RunId = runId;
            Snapshot = snapshot;
            JournalSeq = journalSeq;
            Live = live;
            Stopping = stopping;
        }

        public string RunId { get; }

        public byte[]? Snapshot { get; }

        public long JournalSeq { get; }

        public bool Live { get; }

        public bool Stopping { get; }

        public List<(long Seq, byte[] Line)> Tail { get; } = new();
    }

    private void ReadBatches(RunFilter filter, Action<List<StoredRun>> emit)
    {
        string s = _store.S;
        var where = new List<string>();
        string[]? ids = LikePatterns(filter.RunIdPatterns);
        string[]? names = LikePatterns(filter.NamePatterns);
        string[]? statuses = filter.Statuses.Count == 0 ? null
            : filter.Statuses.Select(StoredStatus).Distinct(StringComparer.Ordinal).ToArray();
        if (ids is not null)
        {
            where.Add("r.run_id ILIKE ANY (@ids)");
        }

        if (names is not null)
        {
            where.Add("r.name ILIKE ANY (@names)");
        }

        if (statuses is not null)
        {
            where.Add("r.status = ANY (@statuses)");
        }

        where.Add("r.run_id COLLATE \"C\" > @after"); // a scan that lost its connection resumes after the last whole run

        // One row per run, in ordinal id order straight from the runs_by_ordinal_id index; its tail
        // (the events after its snapshot, usually none) is one index range of events per run, never
        // a scan of every run's events. Read in pages after the last run read (keyset paging): with
        // a LIMIT the planner keeps to the index, so rows stream as they are found. Without one,
        // once the table's statistics were gathered it chose a scan and a sort of every snapshot
        // (spilled to disk at 10,000 runs), and the first row came only after the last was read.
        string sql = $"""
            SELECT r.run_id, r.snapshot, r.journal_seq, l.run_id IS NOT NULL, q.run_id IS NOT NULL, t.seqs, t.lines
            FROM {s}.runs r
            LEFT JOIN {s}.leases l ON l.run_id = r.run_id AND l.expires_at > now()
            LEFT JOIN {s}.stop_requests q ON q.run_id = r.run_id
            LEFT JOIN LATERAL (
                SELECT array_agg(e.seq ORDER BY e.seq) AS seqs, array_agg(e.line ORDER BY e.seq) AS lines
                FROM {s}.events e WHERE e.run_id = r.run_id AND e.seq > r.journal_seq) t ON true
            WHERE {string.Join(" AND ", where)}
            ORDER BY r.run_id COLLATE "C"
            LIMIT {PageSize.ToString(System.Globalization.CultureInfo.InvariantCulture)}
            """;
        string after = string.Empty; // a page that lost its connection is read again after the last whole batch emitted
        bool more = true;
        while (more)
        {
            _store.Db.Run("list the runs", idempotent: true, connection =>
            {
                using var command = _store.Db.Command(connection, sql);
                if (ids is not null)
                {
                    command.Parameters.AddWithValue("ids", NpgsqlDbType.Array | NpgsqlDbType.Text, ids);
                }

                if (names is not null)
                {
                    command.Parameters.AddWithValue("names", NpgsqlDbType.Array | NpgsqlDbType.Text, names);
                }

                if (statuses is not null)
                {
                    command.Parameters.AddWithValue("statuses", NpgsqlDbType.Array | NpgsqlDbType.Text, statuses);
                }

                command.Parameters.AddWithValue("after", after);
                BeforePage?.Invoke(connection);
                using var reader = command.ExecuteReader();
                int rows = 0;
                var batch = new List<StoredRun>(BatchSize);
                while (reader.Read())
                {
                    rows++;
                    var run = new StoredRun(reader.GetString(0), reader.IsDBNull(1) ? null : (byte[])reader[1], reader.GetInt64(2), reader.GetBoolean(3), reader.GetBoolean(4));
                    if (!reader.IsDBNull(5))
                    {
                        var seqs = (long[])reader[5];
                        var lines = (byte[][])reader[6];
                        for (int i = 0; i < seqs.Length; i++)
                        {
                            run.Tail.Add((seqs[i], lines[i]));
                        }
                    }

                    batch.Add(run);
                    if (batch.Count == BatchSize)
                    {
                        emit(batch);
                        after = run.RunId;
                        batch = new List<StoredRun>(BatchSize);
                    }
                }

                if (batch.Count > 0)
                {
                    emit(batch);
                    after = batch[batch.Count - 1].RunId;
                }

                more = rows == PageSize;
            });
        }
    }

    private List<T> ProjectBatch<T>(List<StoredRun> batch, string localFolders, Func<StoredRunListing, T> project)
    {
        var projected = new T[batch.Count];
        Parallel.For(0, batch.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i => projected[i] = project(Read(batch[i], Path.Combine(localFolders, batch[i].RunId))));
        return projected.ToList();
    }

    /// <summary>The run's state as a reader sees it (Interrupted when Running without a live lease, Stopping with a stop request), or why it could not be read.</summary>
    private StoredRunListing Read(StoredRun row, string local)
    {
        try
        {
            // No local files are touched by a read: the local folder is never created.
            var directory = Run(row.RunId, local);
            var run = new PostgreSqlRunStore(_store, row.RunId, local);
            var snapshot = run.ParseSnapshot(row.Snapshot);
            var state = run.FoldStored(snapshot, (afterSeq, startLength, visitor) =>
            {
                if (afterSeq != row.JournalSeq)
                {
                    return run.ScanEvents(afterSeq, startLength, visitor); // the document and its column disagree: read the log itself
                }

                var scan = new PgEventScan(afterSeq, startLength, visitor);
                foreach (var (seq, line) in row.Tail)
                {
                    scan.Add(seq, line);
                }

                return scan.Finish();
            });
            if (state.Status == RunStatus.Running)
            {
                state.Status = !row.Live ? RunStatus.Interrupted : row.Stopping ? RunStatus.Stopping : RunStatus.Running;
            }

            return new StoredRunListing(directory, state, null);
        }
        catch (RunToolsException ex)
        {
            return new StoredRunListing(Run(row.RunId, local), null, ex);
        }
    }

    /// <summary>Interrupted and Stopping are never stored: they are Running with no live lease, or with a stop request.</summary>
    private static string StoredStatus(RunStatus status) =>
        RunFormat.EnumText(status is RunStatus.Interrupted or RunStatus.Stopping ? RunStatus.Running : status);

    /// <summary>The patterns as ILIKE patterns; null (no SQL filter) when there are none, or one cannot be translated or has letters beyond ASCII.</summary>
    private static string[]? LikePatterns(IReadOnlyList<string> patterns)
    {
        if (patterns.Count == 0)
        {
            return null;
        }

        var like = new string[patterns.Count];
        for (int i = 0; i < patterns.Count; i++)
        {
            // ILIKE folds case by the database's rules, which for letters beyond ASCII (Σ/σ, İ/i)
            // differ from PowerShell's: such a pattern could drop a run the caller would match.
            if (patterns[i].Any(c => c > 127) || LikePattern(patterns[i]) is not { } translated)
            {
                return null;
            }

            like[i] = translated;
        }

        return like;
    }

    /// <summary>
    /// A PowerShell wildcard as a LIKE pattern (escape character '\'): * is %, ? is _, a backtick
    /// escapes the next character, and LIKE's own %, _ and \ are escaped. Null for a [...] set,
    /// which LIKE has no form for: that filter then runs only in the caller.
    /// </summary>
    internal static string? LikePattern(string wildcard)
    {
        var like = new StringBuilder(wildcard.Length + 8);
        for (int i = 0; i < wildcard.Length; i++)
        {
            char c = wildcard[i];
            if (c == '`' && i + 1 < wildcard.Length)
            {
                c = wildcard[++i];
                AppendLiteral(like, c);
                continue;
            }

            switch (c)
            {
                case '*':
                    like.Append('%');
                    break;
                case '?':
                    like.Append('_');
                    break;
                case '[':
                    return null;
                default:
                    AppendLiteral(like, c);
                    break;
            }
        }

        return like.ToString();

        static void AppendLiteral(StringBuilder builder, char c)
        {
            if (c is '%' or '_' or '\\')
            {
                builder.Append('\\');
            }

            builder.Append(c);
        }
    }
}
