using System;
using System.Collections.Generic;
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
}
