using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using Npgsql;
using RunTools.Store.PostgreSql;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>
/// The real PostgreSQL the store tests run against: the cluster .ci/run started (RUNTOOLS_TEST_PG
/// and RUNTOOLS_TEST_PG_ADMIN), or else one this fixture starts itself with the same script
/// (tools/pg-cluster.sh) and stops at the end, so a plain `dotnet test` runs these tests too and a
/// machine without PostgreSQL fails them rather than skipping them.
/// </summary>
public sealed class PostgreSqlCluster : IDisposable
{
    private readonly string? _script;
    private readonly string? _ownFolder;
    private int _schemas;

    public PostgreSqlCluster()
    {
        string? app = Environment.GetEnvironmentVariable("RUNTOOLS_TEST_PG");
        string? admin = Environment.GetEnvironmentVariable("RUNTOOLS_TEST_PG_ADMIN");
        if (string.IsNullOrEmpty(app))
        {
            _script = FindScript();
            _ownFolder = Path.Combine(Path.GetTempPath(), "runtools-pg-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            var exported = ParseExports(RunScript("start", _ownFolder, TimeSpan.FromMinutes(10)));
            app = exported.GetValueOrDefault("RUNTOOLS_TEST_PG");
            admin = exported.GetValueOrDefault("RUNTOOLS_TEST_PG_ADMIN");
        }

        if (string.IsNullOrEmpty(app) || string.IsNullOrEmpty(admin))
        {
            throw new InvalidOperationException("The PostgreSQL tests need RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN (tools/pg-cluster.sh start DIR prints them).");
        }

        AppConnectionString = app;
        AdminConnectionString = admin;
        AppRole = new NpgsqlConnectionStringBuilder(app).Username!;
    }

    /// <summary>The app role: CONNECT on its database and its own schemas, nothing else.</summary>
    public string AppConnectionString { get; }

    /// <summary>The superuser, for setting up schemas and roles only.</summary>
    public string AdminConnectionString { get; }

    public string AppRole { get; }

    /// <summary>A fresh, empty schema owned by the app role: each test class works in its own.</summary>
    public string NewSchema(string prefix = "t")
    {
        string name = $"{prefix}_{Environment.ProcessId}_{System.Threading.Interlocked.Increment(ref _schemas)}_{Guid.NewGuid().ToString("N").Substring(0, 6)}";
        Admin($"CREATE SCHEMA {name} AUTHORIZATION {AppRole}");
        return name;
    }

    internal PostgreSqlStoreOptions Options(string schema, TimeSpan? lease = null) => new()
    {
        ConnectionString = AppConnectionString,
        Schema = schema,
        LeaseDuration = lease ?? TimeSpan.FromSeconds(30),
        HeartbeatInterval = lease is null ? null : TimeSpan.FromMilliseconds(lease.Value.TotalMilliseconds / 5),
    };

    public void Admin(string sql) => Execute(AdminConnectionString, sql);

    public object? AdminScalar(string sql) => Scalar(AdminConnectionString, sql);

    public static void Execute(string connectionString, string sql)
    {
        using var connection = Unpooled(connectionString);
        connection.Open();
        using var command = new NpgsqlCommand(sql, connection);
        command.ExecuteNonQuery();
    }

    public static object? Scalar(string connectionString, string sql)
    {
        using var connection = Unpooled(connectionString);
        connection.Open();
        using var command = new NpgsqlCommand(sql, connection);
        return command.ExecuteScalar();
    }

    /// <summary>Tests end connections on purpose: theirs must not wait in a pool to be found dead.</summary>
    private static NpgsqlConnection Unpooled(string connectionString) =>
        new(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);

    /// <summary>Ends a backend as a network cut or an administrator would (waits until it is gone).</summary>
    public void Terminate(int backendPid) => Admin($"SELECT pg_terminate_backend({backendPid}, 5000)");

    public void Dispose()
    {
        NpgsqlConnection.ClearAllPools();
        if (_ownFolder is not null)
        {
            RunScript("stop", _ownFolder, TimeSpan.FromMinutes(1));
        }
    }

    private string RunScript(string command, string folder, TimeSpan timeout)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(_script!);
        info.ArgumentList.Add(command);
        info.ArgumentList.Add(folder);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"tools/pg-cluster.sh {command} did not finish within {timeout}.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"tools/pg-cluster.sh {command} {folder} failed ({process.ExitCode}): {stderr.Result}");
        }

        return stdout;
    }

    private static Dictionary<string, string> ParseExports(string output)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string raw in output.Split('\n'))
        {
            string line = raw.Trim();
            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (line.StartsWith("export ", StringComparison.Ordinal) && eq > 0)
            {
                values[line.Substring(7, eq - 7)] = line.Substring(eq + 1).Trim('\'');
            }
        }

        return values;
    }

    private static string FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tools", "pg-cluster.sh");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("tools/pg-cluster.sh was not found above " + AppContext.BaseDirectory);
    }
}

[CollectionDefinition(Name)]
public sealed class PostgreSqlCollection : ICollectionFixture<PostgreSqlCluster>
{
    public const string Name = "PostgreSQL";
}
