using System;
using System.Collections.Generic;
using System.Linq;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Store.PostgreSql;

/// <summary>How to reach a PostgreSQL run store, and its lease and blob settings.</summary>
internal sealed class PostgreSqlStoreOptions
{
    /// <summary>An Npgsql connection string (TLS options pass through). Never shown: messages name the database without its password.</summary>
    public string ConnectionString { get; set; } = string.Empty;

    /// <summary>The schema holding the store's tables; created on first use when the role may create it.</summary>
    public string Schema { get; set; } = "runtools";

    /// <summary>How messages name the store (a -Root URI without its password); null: built from the connection string.</summary>
    public string? DisplayName { get; set; }

    /// <summary>How long an owner's lease lasts without a heartbeat: a crashed owner's run reads as Interrupted after it.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the owner renews its lease; a third of <see cref="LeaseDuration"/> when null.</summary>
    public TimeSpan? HeartbeatInterval { get; set; }

    /// <summary>Bytes per stored blob chunk: the most a blob write or read holds in memory.</summary>
    public int ChunkSize { get; set; } = 256 * 1024;
}

/// <summary>
/// A PostgreSQL database holding runs: opens (and migrates) the schema, creates runs and opens
/// them as <see cref="PostgreSqlRunStore"/>s. One per database and schema; its connection pool is
/// shared by the runs opened from it.
/// </summary>
internal sealed class PostgreSqlStore : IDisposable
{
    private PostgreSqlStore(PostgreSqlStoreOptions options)
    {
        Options = options;
        S = PgSchema.Quote(options.Schema);
        Db = new PgDatabase(options.ConnectionString, options.Schema, options.DisplayName);
    }

    public PostgreSqlStoreOptions Options { get; }

    /// <summary>The database and schema, for messages (no password).</summary>
    public string Description => Db.Description;

    /// <summary>The migrations the last <see cref="Open"/> applied (empty when the schema was current).</summary>
    public IReadOnlyList<int> AppliedMigrations { get; private set; } = Array.Empty<int>();

    internal PgDatabase Db { get; }

    internal string S { get; }

    /// <summary>Connects, and creates or migrates the schema (idempotent; concurrent callers apply a migration once).</summary>
    public static PostgreSqlStore Open(PostgreSqlStoreOptions options)
    {
        var store = new PostgreSqlStore(options);
        try
        {
            store.AppliedMigrations = PgSchema.Migrate(store.Db, options.Schema);
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>An existing run; RunNotFound when the store has no event of it.</summary>
    /// <param name="localFolder">A local folder for this run's staging files and blob copies (a run folder's own, or a temp folder).</param>
    public PostgreSqlRunStore OpenRun(string runId, string localFolder)
    {
        RunId.Validate(runId);
        bool exists = Db.Run("find the run", idempotent: true, connection =>
        {
            using var command = Db.Command(connection, $"SELECT EXISTS (SELECT 1 FROM {S}.events WHERE run_id = @run)");
            command.Parameters.AddWithValue("run", runId);
            return command.ExecuteScalar() is true;
        });
        if (!exists)
        {
            throw new RunToolsException(ErrorIds.RunNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"No run '{runId}' in {Description}. List the runs there with Get-Run, or pass the right -Root.", runId);
        }

        return new PostgreSqlRunStore(this, runId, localFolder);
    }

    /// <summary>
    /// Creates a run as Start-Run does (run_created, then its snapshot). The run_created row is the
    /// creation: a second creation of the same id fails with RunExists and changes nothing. A crash
    /// between the two leaves a run without a snapshot, which readers rebuild from its log.
    /// </summary>
    public PostgreSqlRunStore CreateRun(RunCreateOptions options, string localFolder, Func<DateTimeOffset>? clock = null)
    {
        string name = RunsRoot.ValidateName(options.Name);
        var now = (clock ?? (() => DateTimeOffset.UtcNow))();
        string id = options.RunId is null ? Core.RunId.Generate(name, now) : Core.RunId.Validate(options.RunId);
        var declared = (options.DeclaredSteps ?? Array.Empty<string>()).Select(PortableName.ValidateStepName).ToList();
        string scriptHash = Integrity.Sha256Hex(options.Script);
        string? scriptSource = options.ScriptSourcePath is null ? null : System.IO.Path.GetFullPath(options.ScriptSourcePath);

        var store = new PostgreSqlRunStore(this, id, localFolder);
        var log = new PgRunLog(store, 0, 0, session: null) { Creating = true };
        using (var recorder = new RunRecorder(log, new RunState { RunId = id }, new ItemLedger(), store.Snapshot.Replace, TimeSpan.MaxValue, () => now))
        {
            recorder.Record(RunEvent.RunCreated(id, name, options, scriptHash, scriptSource, declared), Durability.Lazy);
            recorder.Snapshot();
        }

        return store;
    }

    public void Dispose() => Db.Dispose();
}
