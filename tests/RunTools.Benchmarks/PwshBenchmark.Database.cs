using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using Npgsql;
using RunTools.Core;
using RunTools.Core.Configuration;
using RunTools.Core.Storage;

namespace RunTools.Benchmarks;

/// <summary>
/// The database rows of the pwsh family (issue 13): D1, a run's durable cost per item in a
/// PostgreSQL database beside a bare single-row INSERT + COMMIT on the same server; D2, Get-Run over
/// many runs in the database beside Get-Run over as many runs in folders. The cluster is the one
/// RUNTOOLS_TEST_PG / RUNTOOLS_TEST_PG_ADMIN name, else a throwaway one started with
/// tools/pg-cluster.sh (and stopped at the end); each benchmark works in a fresh schema.
/// </summary>
internal sealed partial class PwshBenchmark
{
    private void Database(string repositoryRoot, bool items, bool list, bool workers, int scale)
    {
        using var cluster = BenchCluster.Open(repositoryRoot, Path.Combine(_work, "pg"));
        _report.AddFact($"PostgreSQL: {cluster.Version} ({cluster.Origin})");
        if (items)
        {
            Console.Error.WriteLine("D1 durable item in a database ...");
            DatabaseItems(cluster, items: 1000 / scale, rounds: _quick ? 3 : 5);
        }

        if (list)
        {
            Console.Error.WriteLine("D2 Get-Run over many runs in a database ...");
            DatabaseList(cluster, runs: 10_000 / scale, rounds: _quick ? 3 : 5);
        }

        if (workers)
        {
            Console.Error.WriteLine("D3 workers on one run (Join-Run) ...");
            DatabaseWorkers(cluster, items: 2000 / scale, rounds: _quick ? 2 : 3);
        }
    }

    private void DatabaseWorkers(BenchCluster cluster, int items, int rounds)
    {
        const string section = "D3 workers on one run";
        const int processes = 4, throttle = 4, sleepMs = 50;
        string schema = cluster.NewSchema("bench_d3");
        var json = Child(section, "DbWorkers.ps1", ("Work", Dir("D3")), ("Uri", cluster.Uri(schema)), ("Items", items), ("SleepMs", sleepMs),
            ("Throttle", throttle), ("Processes", processes), ("Rounds", rounds));
        double[] measured = Samples(json, "measured");
        double[] baseline = Samples(json, "baseline");
        double[] share = Samples(json, "worker_share");
        double a = Measure.Median(measured);
        double b = Measure.Median(baseline);
        _report.AddDetail(section, $"the items step (step_started to step_completed in the journal), owner and {processes - 1} workers: {Measure.List(measured, Measure.Time)} (median {Measure.Time(a)}, {items / a:0} items/s; ideal {Measure.Time(items * sleepMs / 1000.0 / throttle / processes)})");
        _report.AddDetail(section, $"the same step, the owner alone: {Measure.List(baseline, Measure.Time)} (median {Measure.Time(b)}, {items / b:0} items/s; ideal {Measure.Time(items * sleepMs / 1000.0 / throttle)})");
        _report.AddDetail(section, $"share of the items the workers completed: {string.Join(", ", share.Select(x => x.ToString("P0", System.Globalization.CultureInfo.InvariantCulture)))}");
        double cold = json.GetProperty("cold").GetDouble();
        _report.AddDetail(section, $"the first round, not in the ratio: the same step with the {processes - 1} worker processes just started (each JITs PowerShell, the module and Npgsql during the step): {Measure.Time(cold)} ({items / cold:0} items/s, {b / cold:0.00}× the owner alone)");
        _report.AddRow(new ResultRow($"D3. {processes} processes (owner + {processes - 1} × Join-Run) × -ThrottleLimit {throttle} on one run, {Measure.Number(items)} items of {sleepMs} ms, {rounds} rounds",
            $"{items / a:0} items/s", $"{items / b:0} items/s (the owner alone, -ThrottleLimit {throttle})", b / a, "≥ 3.50×", b / a >= 3.5));
        cluster.DropSchema(schema);
    }

    private void DatabaseItems(BenchCluster cluster, int items, int rounds)
    {
        const string section = "D1 durable item in a database";
        string schema = cluster.NewSchema("bench_d1");
        var json = Child(section, "DbItems.ps1", ("Work", Dir("D1")), ("Uri", cluster.Uri(schema)), ("ConnectionString", cluster.App), ("Items", items), ("Rounds", rounds));
        double[] measured = PerItem(Samples(json, "measured"), items);
        double[] totals = PerItem(Samples(json, "start_run_total"), items);
        double[] baseline = PerItem(Samples(json, "baseline"), items);
        double a = Measure.Median(measured);
        double b = Measure.Median(baseline);
        int bytes = json.GetProperty("bytes_per_item").GetInt32();
        _report.AddDetail(section, $"events per item: {json.GetProperty("lines_per_item").GetDouble():0.##} rows, {bytes} B of lines in all");
        _report.AddDetail(section, $"Invoke-RunItem per item, timed inside the run script: {Measure.List(measured, Measure.Micros)} (median {Measure.Micros(a)}, {1 / a:0} items/s)");
        _report.AddDetail(section, $"Start-Run per item, whole call (run creation, stored copies, attempt): {Measure.List(totals, Measure.Micros)} (median {Measure.Micros(Measure.Median(totals))})");
        _report.AddDetail(section, $"bare INSERT of one {bytes} B row + COMMIT (autocommit, prepared, synchronous_commit on), one per item, same pwsh and server: {Measure.List(baseline, Measure.Micros)} (median {Measure.Micros(b)})");
        _report.AddDetail(section, $"Invoke-RunItem / bare INSERT per round: {string.Join(", ", measured.Zip(baseline, (m, r) => Measure.Ratio(m / r)))}");
        _report.AddRow(new ResultRow($"D1. Durable item in a PostgreSQL database: Invoke-RunItem (empty body) in a Start-Run script, {Measure.Number(items)} items × {rounds} rounds",
            $"{Measure.Micros(a)} / item", $"{Measure.Micros(b)} / item (bare INSERT + COMMIT, same server)", a / b, "≤ 1.50×", a / b <= 1.5));
        cluster.DropSchema(schema);
    }

    private void DatabaseList(BenchCluster cluster, int runs, int rounds)
    {
        const string section = "D2 Get-Run over many runs in a database";
        string schema = cluster.NewSchema("bench_d2");
        string uri = cluster.Uri(schema);
        string folders = Path.Combine(Dir("D2"), "runs");
        var sw = Stopwatch.StartNew();
        int tails = ListBenchmark.CreateRuns(new RunsRoot(folders), runs, tailEvery: 33);
        double folderSetup = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var catalog = RunCatalogs.Open(RootLocation.Parse(uri, Path.GetFullPath));
        var config = EffectiveConfig.FromDictionary(new Hashtable { ["source"] = "/data/in", ["target"] = "/data/out", ["retries"] = 3, ["dry_run"] = false });
        byte[] script = Encoding.UTF8.GetBytes("param($Config)\nInvoke-RunStep work { 'x' }\n");
        string? local = Environment.GetEnvironmentVariable("RUNTOOLS_LOCAL");
        Environment.SetEnvironmentVariable("RUNTOOLS_LOCAL", Path.Combine(Dir("D2"), "local"));
        try
        {
            Parallel.For(0, runs, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
                catalog.CreateRun(new RunCreateOptions { Name = "list", RunId = "r-" + i.ToString("D5", System.Globalization.CultureInfo.InvariantCulture), Config = config, Script = script }));
        }
        finally
        {
            Environment.SetEnvironmentVariable("RUNTOOLS_LOCAL", local);
        }

        _report.AddDetail(section, $"set-up: {Measure.Number(runs)} runs as folders as for P6 ({tails} with a journal tail) in {Measure.Time(folderSetup)}; the same number created in the database with IRunCatalog.CreateRun (events, snapshot row, stored copies; no tails) in {Measure.Time(sw.Elapsed.TotalSeconds)}");
        var json = Child(section, "DbList.ps1", ("Uri", uri), ("Root", folders), ("Runs", runs), ("Rounds", rounds));
        double[] measured = Samples(json, "measured");
        double[] baseline = Samples(json, "baseline");
        double[] filtered = Samples(json, "filtered");
        double a = Measure.Median(measured);
        double b = Measure.Median(baseline);
        _report.AddDetail(section, $"@(Get-Run -Root <database>): {Measure.List(measured, Measure.Time)} (median {Measure.Time(a)}, {Measure.Micros(a / runs)} per run)");
        _report.AddDetail(section, $"@(Get-Run -Root <folder>) over as many runs, same pwsh: {Measure.List(baseline, Measure.Time)} (median {Measure.Time(b)})");
        _report.AddDetail(section, $"Get-Run -Root <database> -Name 'nomatch*' (the filter runs in SQL): {Measure.List(filtered, Measure.Time)} (median {Measure.Time(Measure.Median(filtered))})");
        LaterRoundsDetail(section, json, "the database", "the folders");
        _report.AddRow(new ResultRow($"D2. Get-Run over {Measure.Number(runs)} runs in a PostgreSQL database, {rounds} rounds", Measure.Time(a),
            $"{Measure.Time(b)} (Get-Run over {Measure.Number(runs)} run folders, same pwsh)", a / b, "≤ 0.50×", a / b <= 0.5));
        cluster.DropSchema(schema);
    }

    /// <summary>The cluster the database rows run against, with a schema per benchmark.</summary>
    private sealed class BenchCluster : IDisposable
    {
        private readonly string? _script;
        private readonly string? _ownFolder;

        private BenchCluster(string app, string admin, string origin, string? script, string? ownFolder)
        {
            App = app;
            Admin = admin;
            Origin = origin;
            _script = script;
            _ownFolder = ownFolder;
            using var connection = new NpgsqlConnection(admin);
            connection.Open();
            Version = connection.PostgreSqlVersion.ToString();
        }

        public string App { get; }

        public string Admin { get; }

        public string Origin { get; }

        public string Version { get; }

        public static BenchCluster Open(string repositoryRoot, string folder)
        {
            string? app = Environment.GetEnvironmentVariable("RUNTOOLS_TEST_PG");
            string? admin = Environment.GetEnvironmentVariable("RUNTOOLS_TEST_PG_ADMIN");
            if (!string.IsNullOrEmpty(app) && !string.IsNullOrEmpty(admin))
            {
                return new BenchCluster(app, admin, "the cluster RUNTOOLS_TEST_PG names", null, null);
            }

            string script = Path.Combine(repositoryRoot, "tools", "pg-cluster.sh");
            string exports = RunScript(script, "start", folder);
            var values = exports.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("export ", StringComparison.Ordinal))
                .Select(l => l.Substring(7).Split('=', 2)).ToDictionary(p => p[0], p => p[1].Trim('\''));
            return new BenchCluster(values["RUNTOOLS_TEST_PG"], values["RUNTOOLS_TEST_PG_ADMIN"], "a throwaway cluster from tools/pg-cluster.sh, unix socket, fsync on", script, folder);
        }

        /// <summary>The -Root URI of <paramref name="schema"/> for the app role (password included: the child needs it).</summary>
        public string Uri(string schema)
        {
            var b = new NpgsqlConnectionStringBuilder(App);
            return $"postgresql://{System.Uri.EscapeDataString(b.Username!)}:{System.Uri.EscapeDataString(b.Password ?? string.Empty)}@{System.Uri.EscapeDataString(b.Host!)}:{b.Port}/{System.Uri.EscapeDataString(b.Database!)}?schema={schema}";
        }

        public string NewSchema(string prefix)
        {
            string name = $"{prefix}_{Guid.NewGuid().ToString("N").Substring(0, 8)}";
            AdminSql($"CREATE SCHEMA {name} AUTHORIZATION {new NpgsqlConnectionStringBuilder(App).Username}");
            return name;
        }

        public void DropSchema(string schema) => AdminSql($"DROP SCHEMA {schema} CASCADE");

        public void Dispose()
        {
            if (_script is not null && _ownFolder is not null)
            {
                RunScript(_script, "stop", _ownFolder);
            }
        }

        private void AdminSql(string sql)
        {
            using var connection = new NpgsqlConnection(Admin);
            connection.Open();
            using var command = new NpgsqlCommand(sql, connection);
            command.ExecuteNonQuery();
        }

        private static string RunScript(string script, string verb, string folder)
        {
            var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add(script);
            info.ArgumentList.Add(verb);
            info.ArgumentList.Add(folder);
            using var process = Process.Start(info)!;
            var stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"tools/pg-cluster.sh {verb} failed ({process.ExitCode}): {stderr.Result}");
            }

            return stdout;
        }
    }
}
