using System;
using System.Collections.Generic;
using Npgsql;
using RunTools.Core.Storage;
using RunTools.Store.PostgreSql;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>
/// What the PostgreSQL test classes share: the cluster (<see cref="PostgreSqlCluster"/>: the one
/// .ci/run started, or one it starts), a temporary folder that also holds the database runs' local
/// folders (not the user's profile), the stores and attempts a test opened (closed after it, last
/// first), a schema's root as a -Root URI and its catalog, and "nothing stored". Each derived class
/// carries <c>[Collection(PostgreSqlCollection.Name)]</c>, so that the classes run one at a time.
/// </summary>
public abstract class PostgreSqlTestBase : IDisposable
{
    private static readonly string[] s_runTables = { "events", "runs", "blobs", "blob_contents", "blob_chunks", "leases" };
    private readonly List<IDisposable> _open = new();
    private readonly string? _savedLocal;

    protected PostgreSqlTestBase(PostgreSqlCluster cluster)
    {
        Cluster = cluster;
        _savedLocal = Environment.GetEnvironmentVariable(LocalFolders.Variable);
        Environment.SetEnvironmentVariable(LocalFolders.Variable, Dir.Combine("local"));
    }

    protected PostgreSqlCluster Cluster { get; }

    protected TempDir Dir { get; } = new();

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (!disposing)
        {
            return;
        }

        for (int i = _open.Count - 1; i >= 0; i--)
        {
            _open[i].Dispose();
        }

        PgRunImport.FaultPoint = null;
        Environment.SetEnvironmentVariable(LocalFolders.Variable, _savedLocal);
        Dir.Dispose();
    }

    /// <summary>Opens the store on <paramref name="schema"/> (a lease of <paramref name="lease"/>, heartbeats every fifth of it), closed after the test.</summary>
    internal PostgreSqlStore Open(string schema, TimeSpan? lease = null) => Track(PostgreSqlStore.Open(Cluster.Options(schema, lease)));

    /// <summary>Closes <paramref name="open"/> after the test, before what was opened earlier.</summary>
    protected T Track<T>(T open)
        where T : IDisposable
    {
        _open.Add(open);
        return open;
    }

    /// <summary>The schema as the app role's -Root (password included, as an operator may write it).</summary>
    protected string Uri(string schema)
    {
        var builder = new NpgsqlConnectionStringBuilder(Cluster.AppConnectionString);
        return $"postgresql://{System.Uri.EscapeDataString(builder.Username!)}:{System.Uri.EscapeDataString(builder.Password!)}@{System.Uri.EscapeDataString(builder.Host!)}:{builder.Port}/{System.Uri.EscapeDataString(builder.Database!)}?schema={schema}";
    }

    /// <summary>The schema's catalog, as the cmdlets open it from a -Root; it names the root without the password.</summary>
    protected IRunCatalog Catalog(string schema)
    {
        var builder = new NpgsqlConnectionStringBuilder(Cluster.AppConnectionString);
        var catalog = RunCatalogs.Open(RootLocation.Parse(Uri(schema), _ => throw new InvalidOperationException("not a folder")));
        Assert.StartsWith($"postgresql://{builder.Username}@", catalog.Display, StringComparison.Ordinal);
        Assert.DoesNotContain(builder.Password!, catalog.Display, StringComparison.Ordinal);
        return catalog;
    }

    /// <summary>No run's rows at all in <paramref name="schema"/> (an import or conversion cut short).</summary>
    protected void AssertNothingStored(string schema)
    {
        foreach (string table in s_runTables)
        {
            Assert.Equal("0", Cluster.AdminScalar($"SELECT count(*) FROM {schema}.{table}")!.ToString());
        }
    }
}
