using System;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using Npgsql;
using RunTools.Core;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// The connection side of the store: one pooled data source per store, every statement run
/// through <see cref="Run{T}"/>, which retries what is safe to retry after a dropped connection or
/// a restarting server and turns what is left into a <see cref="RunToolsException"/> that names the
/// database without its password.
/// </summary>
internal sealed class PgDatabase : IDisposable
{
    /// <summary>How long an idle pooled connection is kept, unless the connection string sets it (Connection Idle Lifetime).</summary>
    internal const int IdleLifetimeSeconds = 10;

    // Npgsql's own default, which the store replaces.
    private const int DefaultIdleLifetimeSeconds = 300;

    // Waits between tries: a dropped connection is retried at once, a restarting server gets a few seconds.
    private static readonly int[] s_retryDelaysMs = { 0, 200, 1000, 3000 };

    private readonly NpgsqlDataSource _dataSource;
    private readonly string? _password;

    public PgDatabase(string connectionString, string schema, string? display = null)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException)
        {
            // The parser's message quotes the string it could not read, password and all.
            throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                "The PostgreSQL connection string cannot be read. Use the Npgsql form: Host=...;Port=...;Database=...;Username=...;Password=... (TLS options such as SSL Mode pass through).");
        }

        _password = string.IsNullOrEmpty(builder.Password) ? null : builder.Password;
        if (string.IsNullOrEmpty(builder.ApplicationName))
        {
            builder.ApplicationName = "RunTools";
        }

        // A commit is the moment a unit counts as done: it must be on disk, whatever the server's default.
        // Every statement the store makes is short; compiling one with JIT (which a listing of
        // thousands of runs would cross the planner's threshold for) costs more than it saves.
        builder.Options = ((builder.Options ?? string.Empty) + " -c synchronous_commit=on -c jit=off").Trim();

        // The store sets no session state of its own beyond the startup options, so a pooled
        // connection need not be reset (DISCARD ALL) each time it is taken, and the statements a
        // run repeats per item (its commit, its stop check) are prepared once per connection.
        builder.NoResetOnClose = true;

        // A session keeps the store of every root it used (PostgreSqlStoreProvider), each with a
        // pool of its own: an idle connection is closed after 10 s rather than Npgsql's 5 minutes,
        // so that a session that visits many roots does not hold the server's connection slots.
        // A running attempt uses its connections every heartbeat and keeps them.
        if (builder.ConnectionIdleLifetime == DefaultIdleLifetimeSeconds)
        {
            builder.ConnectionIdleLifetime = IdleLifetimeSeconds;
            builder.ConnectionPruningInterval = Math.Min(builder.ConnectionPruningInterval, IdleLifetimeSeconds / 2);
        }

        if (builder.MaxAutoPrepare == 0)
        {
            builder.MaxAutoPrepare = 32;
            builder.AutoPrepareMinUsages = 2;
        }
        Description = display ?? $"postgresql://{builder.Username}@{builder.Host}:{builder.Port}/{builder.Database} (schema {schema})";
        _dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
    }

    /// <summary>Where the runs are, for messages: never the password.</summary>
    public string Description { get; }

    /// <summary>
    /// Runs <paramref name="work"/> on a pooled connection. When the connection drops or the server
    /// restarts, an <paramref name="idempotent"/> piece of work is retried on a new connection (the
    /// pool is cleared first: its other connections died too) after 0, 0.2, 1 and 3 s; with
    /// <paramref name="patience"/>, every 3 s more until that much time has passed since the first
    /// try (an owner's writes wait out a server restart or failover for as long as its lease lasts).
    /// Anything else fails at once.
    /// </summary>
    public T Run<T>(string what, bool idempotent, Func<NpgsqlConnection, T> work, TimeSpan? patience = null)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                using var connection = Open(what);
                return work(connection);
            }
            catch (Exception ex) when (IsConnectionFailure(ex))
            {
                _dataSource.Clear();
                int delay = attempt + 1 < s_retryDelaysMs.Length ? s_retryDelaysMs[attempt + 1] : s_retryDelaysMs[s_retryDelaysMs.Length - 1];
                bool patient = patience is { } limit && started.Elapsed + TimeSpan.FromMilliseconds(delay) < limit;
                if (!idempotent || (attempt + 1 >= s_retryDelaysMs.Length && !patient))
                {
                    throw Unavailable(what, ex, idempotent ? $"retried {attempt + 1} times over {started.Elapsed.TotalSeconds:0.#} s" : null);
                }

                Thread.Sleep(delay);
            }
            catch (PostgresException ex)
            {
                throw Translate(what, ex);
            }
            catch (NpgsqlException ex)
            {
                // Refused by the driver before any statement: no password given, TLS asked of a
                // server without it. Not a connection that dropped, so not retried.
                throw new RunToolsException(ErrorIds.StoreUnavailable, RunToolsErrorCategory.ResourceBusy,
                    $"Could not {what} in {Description}: {Redact(ex.Message)}. Check the root's connection settings (the password in the URI, PGPASSWORD or ~/.pgpass; the TLS options), then try again; work recorded before this is kept.",
                    Description);
            }
        }
    }

    private NpgsqlConnection Open(string what)
    {
        try
        {
            return _dataSource.OpenConnection();
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            // Not the server: a password file (PGPASSFILE, ~/.pgpass) or a TLS file that cannot be read.
            throw new RunToolsException(ErrorIds.StoreUnavailable, RunToolsErrorCategory.ReadError,
                $"Could not {what} in {Description}: {Redact(ex.Message)}. Check the root's connection settings (PGPASSFILE or ~/.pgpass, the TLS certificate and key files), then try again; work recorded before this is kept.",
                Description);
        }
    }

    /// <summary>A pooled connection, opened once: no retry (tab completion, which gives up rather than wait).</summary>
    public NpgsqlConnection OpenConnectionOnce() => _dataSource.OpenConnection();

    public void Run(string what, bool idempotent, Action<NpgsqlConnection> work, TimeSpan? patience = null) =>
        Run<object?>(what, idempotent, connection =>
        {
            work(connection);
            return null;
        }, patience);

    public NpgsqlCommand Command(NpgsqlConnection connection, string sql, NpgsqlTransaction? transaction = null) =>
        new(sql, connection, transaction);

    /// <summary>A failure that says nothing about the statement: the connection or the server went away.</summary>
    public static bool IsConnectionFailure(Exception ex) => ex switch
    {
        PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal) // connection exception
            || pg.SqlState is "57P01" or "57P02" or "57P03" // admin shutdown (pg_terminate_backend), crash shutdown, cannot connect now
            || pg.SqlState == "53300", // too many connections
        NpgsqlException npgsql => npgsql.IsTransient || npgsql.InnerException is IOException or SocketException or TimeoutException,
        InvalidOperationException when ex.Message.Contains("connection is broken", StringComparison.OrdinalIgnoreCase) => true,
        _ => false,
    };

    /// <summary>The store cannot be reached (or stopped answering): StoreUnavailable, the password scrubbed.</summary>
    public RunToolsException Unavailable(string what, Exception ex, string? retried = null) =>
        new(ErrorIds.StoreUnavailable, RunToolsErrorCategory.ResourceBusy,
            $"Could not {what} in {Description}: {Redact(ex.Message)}{(retried is null ? string.Empty : $" ({retried})")}. Check that the database is running and reachable, then try again; work recorded before this is kept.",
            Description);

    /// <summary>A statement the server refused: a permission, a missing object, or a failure of its own.</summary>
    public RunToolsException Translate(string what, PostgresException ex)
    {
        if (ex.SqlState is "28000" or "28P01")
        {
            return new RunToolsException(ErrorIds.StoreUnavailable, RunToolsErrorCategory.PermissionDenied,
                $"Could not {what} in {Description}: {Redact(ex.MessageText)}. Check the user name and password (in the URI, PGPASSWORD or ~/.pgpass) and the server's pg_hba.conf rules for this host.",
                Description);
        }

        if (ex.SqlState == "42501")
        {
            return new RunToolsException(ErrorIds.StoreUnavailable, RunToolsErrorCategory.PermissionDenied,
                $"Could not {what} in {Description}: {Redact(ex.MessageText)}. The role needs CONNECT on the database and USAGE and CREATE on the store's schema (docs/postgresql-store.md).",
                Description);
        }

        if (ex.SqlState == "3D000")
        {
            return new RunToolsException(ErrorIds.StoreUnavailable, RunToolsErrorCategory.ObjectNotFound,
                $"Could not {what} in {Description}: {Redact(ex.MessageText)}. Create the database (RunTools creates only its schema and tables), or correct the database name in the root.",
                Description);
        }

        return new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
            $"Could not {what} in {Description}: {ex.SqlState}: {Redact(ex.MessageText)}. Nothing of this operation was recorded.", Description);
    }

    /// <summary>Server and driver messages never carry the password; this makes sure of it.</summary>
    public string Redact(string message) =>
        _password is null ? message : message.Replace(_password, "***", StringComparison.Ordinal);

    public void Dispose() => _dataSource.Dispose();
}
