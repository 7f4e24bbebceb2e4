using System;
using System.Collections.Generic;
using Npgsql;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// What Core's <see cref="RunCatalogs"/> finds by name in this assembly: the catalog of a database
/// root. One opened store (pool, migrated schema) per connection and schema for the process, so a
/// session's Get-Runs share connections instead of opening a pool each.
/// </summary>
internal sealed class PostgreSqlStoreProvider : IRunStoreProvider
{
    private static readonly Dictionary<(string, string, int?), PostgreSqlStore> s_stores = new();
    private static readonly Dictionary<string, PostgreSqlStore> s_byDisplay = new(StringComparer.Ordinal);
    private static readonly object s_gate = new();

    /// <summary>
    /// A root without a password that names a store this process already opened with one (a
    /// RunInfo's Root, which never shows it: <c>Get-Run -Root $uri | Resume-Run</c>) reuses that
    /// store; otherwise Npgsql finds the password in PGPASSWORD or ~/.pgpass.
    /// </summary>
    public IRunCatalog OpenCatalog(RootLocation root)
    {
        var key = (root.ConnectionString!, root.Schema!, root.LeaseSeconds);
        PostgreSqlStore? store;
        lock (s_gate)
        {
            bool passwordless = new Npgsql.NpgsqlConnectionStringBuilder(key.Item1).Password is null;
            if (!s_stores.TryGetValue(key, out store) && !(passwordless && s_byDisplay.TryGetValue(root.Display, out store)))
            {
                // Not cached on failure: the next command tries again (the server may be up by then).
                var options = new PostgreSqlStoreOptions { ConnectionString = key.Item1, Schema = key.Item2, DisplayName = root.Display };
                if (root.LeaseSeconds is { } lease)
                {
                    options.LeaseDuration = TimeSpan.FromSeconds(lease);
                }

                store = PostgreSqlStore.Open(options);
                s_stores[key] = store;
                if (!passwordless || !s_byDisplay.ContainsKey(root.Display))
                {
                    s_byDisplay[root.Display] = store;
                }
            }
        }

        return new PgRunCatalog(store, root);
    }

    /// <summary>
    /// Tab completion's listing: one SELECT of the runs table, on a connection of its own (unpooled,
    /// connect and command timeouts of <paramref name="timeout"/>, no retry), or on the pool of a
    /// store this process opened for a root that carries no password. Never migrates the schema:
    /// a schema or table that does not exist yet has no runs.
    /// </summary>
    public IReadOnlyList<(string RunId, string Name)> ListRunNames(RootLocation root, TimeSpan timeout)
    {
        int seconds = Math.Max(1, (int)Math.Ceiling(timeout.TotalSeconds));
        var builder = new NpgsqlConnectionStringBuilder(root.ConnectionString!);
        PostgreSqlStore? opened = null;
        lock (s_gate)
        {
            if (!s_stores.TryGetValue((root.ConnectionString!, root.Schema!, root.LeaseSeconds), out opened) && builder.Password is null)
            {
                s_byDisplay.TryGetValue(root.Display, out opened);
            }
        }

        builder.Timeout = seconds;
        builder.CommandTimeout = seconds;
        builder.Pooling = false;
        if (string.IsNullOrEmpty(builder.ApplicationName))
        {
            builder.ApplicationName = "RunTools";
        }

        using var connection = opened is not null ? opened.Db.OpenConnectionOnce() : new NpgsqlConnection(builder.ConnectionString);
        if (connection.State != System.Data.ConnectionState.Open)
        {
            connection.Open();
        }

        using var command = new NpgsqlCommand($"SELECT run_id, name FROM {PgSchema.Quote(root.Schema!)}.runs ORDER BY run_id DESC", connection) { CommandTimeout = seconds };
        var runs = new List<(string, string)>();
        try
        {
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                runs.Add((reader.GetString(0), reader.GetString(1)));
            }
        }
        catch (PostgresException ex) when (ex.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName)
        {
            // The store was never used there: no runs.
        }

        return runs;
    }
}
