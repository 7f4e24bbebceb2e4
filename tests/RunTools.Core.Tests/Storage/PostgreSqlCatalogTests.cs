using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Npgsql;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;
using RunTools.Store.PostgreSql;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>Listing a database root (what Get-Run does with a postgresql:// -Root), on the real cluster.</summary>
[Collection(PostgreSqlCollection.Name)]
public sealed class PostgreSqlCatalogTests : IDisposable
{
    // Long enough that no heartbeat runs during a test: a lease expires only when a test says so.
    private static readonly TimeSpan s_lease = TimeSpan.FromMinutes(10);

    private readonly PostgreSqlCluster _cluster;
    private readonly TempDir _dir = new();
    private readonly List<IDisposable> _open = new();

    public PostgreSqlCatalogTests(PostgreSqlCluster cluster) => _cluster = cluster;

    public void Dispose()
    {
        for (int i = _open.Count - 1; i >= 0; i--)
        {
            _open[i].Dispose();
        }

        _dir.Dispose();
    }

    [Fact]
    public void Lists_every_run_in_id_order_with_the_status_a_reader_derives_and_the_state_folded_past_the_snapshot()
    {
        string schema = _cluster.NewSchema("list");
        var db = Open(schema);
        db.CreateRun(Create("r1-created", "nightly_load"), _dir.Combine("l"));

        db.CreateRun(Create("r2-done", "nightlyXload"), _dir.Combine("l"));
        byte[] createdSnapshot = (byte[])_cluster.AdminScalar($"SELECT snapshot FROM {schema}.runs WHERE run_id = 'r2-done'")!;
        using (var attempt = Begin(db, "r2-done"))
        {
            attempt.BeginStep("upload");
            foreach (string key in new[] { "a", "b" })
            {
                attempt.BeginItem("upload", key);
                attempt.CompleteItem("upload", key, Runs.Bytes("sent " + key));
            }

            attempt.CompleteStep("upload", null);
            attempt.Complete();
        }

        // A snapshot left behind its log (a crash before the next snapshot): the listing folds the events after it.
        _cluster.Admin($"UPDATE {schema}.runs SET snapshot = decode('{Convert.ToHexString(createdSnapshot)}', 'hex'), journal_seq = 1, status = 'created' WHERE run_id = 'r2-done'");
        Begin(db, "r3-live");
        Begin(db, "r4-dead");
        Begin(db, "r5-stopping");
        db.OpenRun("r5-stopping", _dir.Combine("l")).RequestStop(new StopRequest { RequestedAt = DateTimeOffset.UtcNow, RequestedBy = "ops" });
        // r4's owner died: its lease ran out by the database's clock.
        _cluster.Admin($"UPDATE {schema}.leases SET expires_at = now() - interval '1 second' WHERE run_id = 'r4-dead'");

        var catalog = Catalog(schema);
        var listed = catalog.EnumerateRuns(new RunFilter(), l => l).ToList();

        Assert.Equal(new[] { "r1-created", "r2-done", "r3-live", "r4-dead", "r5-stopping" }, listed.Select(l => l.RunId));
        Assert.All(listed, l => Assert.Null(l.Error));
        Assert.Equal(
            new[] { RunStatus.Created, RunStatus.Completed, RunStatus.Running, RunStatus.Interrupted, RunStatus.Stopping },
            listed.Select(l => l.State!.Status));
        var done = listed[1].State!;
        Assert.Equal(2, done.ItemsCompleted);
        Assert.Equal(1, done.StepsCompleted);
        Assert.Equal("nightlyXload", done.Name);
        // The same fold as the run's own reader.
        var own = db.OpenRun("r2-done", _dir.Combine("r")).Snapshot.ReadStored();
        Assert.Equal((own.Status, own.ItemsCompleted, own.Journal.Sequence, own.UpdatedAt), (done.Status, done.ItemsCompleted, done.Journal.Sequence, done.UpdatedAt));
    }

    [Fact]
    public void Filters_run_in_the_query_with_like_s_characters_escaped_and_case_ignored()
    {
        string schema = _cluster.NewSchema("filter");
        var db = Open(schema);
        db.CreateRun(Create("a-1", "nightly_load"), _dir.Combine("l"));
        db.CreateRun(Create("a-2", "nightlyXload"), _dir.Combine("l"));
        db.CreateRun(Create("b-1", "100% weekly"), _dir.Combine("l"));
        Begin(db, "b-2");
        var catalog = Catalog(schema);

        List<string> Ids(RunFilter filter) => catalog.EnumerateRuns(filter, l => l.RunId).ToList();

        Assert.Equal(new[] { "a-1" }, Ids(new RunFilter { NamePatterns = new[] { "nightly_load" } }));
        Assert.Equal(new[] { "a-1", "a-2" }, Ids(new RunFilter { NamePatterns = new[] { "NIGHTLY*" } }));
        Assert.Equal(new[] { "b-1" }, Ids(new RunFilter { NamePatterns = new[] { "100%*" } }));
        Assert.Equal(new[] { "a-2", "b-2" }, Ids(new RunFilter { RunIdPatterns = new[] { "?-2" } }));
        Assert.Equal(new[] { "b-1" }, Ids(new RunFilter { RunIdPatterns = new[] { "B-1" } }));
        Assert.Equal(new[] { "a-1", "a-2", "b-1" }, Ids(new RunFilter { Statuses = new[] { RunStatus.Created } }));
        // Interrupted and Stopping are derived from running rows: the query keeps those, the caller decides.
        Assert.Equal(new[] { "b-2" }, Ids(new RunFilter { Statuses = new[] { RunStatus.Interrupted } }));
        // A [set] has no LIKE form: every run comes back, and the caller's own match decides.
        Assert.Equal(4, Ids(new RunFilter { NamePatterns = new[] { "[n]ightly*" } }).Count);
        Assert.Empty(Ids(new RunFilter { NamePatterns = new[] { "nothing*" }, Statuses = new[] { RunStatus.Created } }));
    }

    [Fact]
    public void Runs_across_batches_stream_in_id_order_and_the_caller_can_stop_early()
    {
        string schema = _cluster.NewSchema("batch");
        var db = Open(schema);
        var ids = Enumerable.Range(0, 600).Select(i => $"run-{i:D4}").ToList();
        foreach (string id in ids.OrderBy(id => id.GetHashCode(StringComparison.Ordinal)))
        {
            db.CreateRun(Create(id, "bulk"), _dir.Combine("l"));
        }

        var catalog = Catalog(schema);

        Assert.Equal(ids, catalog.EnumerateRuns(new RunFilter(), l => l.State!.RunId));
        Assert.Equal(ids.Take(3), catalog.EnumerateRuns(new RunFilter(), l => l.RunId).Take(3));
    }

    [Fact]
    public void An_unreachable_server_is_StoreUnavailable_naming_the_root_without_its_password()
    {
        var root = RootLocation.Parse("postgresql://runtools:sekrit-pw@127.0.0.1:1/jobs?schema=nightly", _ => throw new InvalidOperationException("not a folder"));

        var error = Assert.Throws<RunToolsException>(() => RunCatalogs.Open(root));

        Assert.Equal(ErrorIds.StoreUnavailable, error.ErrorId);
        Assert.Contains("postgresql://runtools@127.0.0.1:1/jobs?schema=nightly", error.Message, StringComparison.Ordinal);
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            Assert.DoesNotContain("sekrit-pw", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_run_whose_creation_was_cut_short_before_its_first_snapshot_is_listed_from_its_events()
    {
        string schema = _cluster.NewSchema("half");
        var db = Open(schema);
        db.CreateRun(Create("whole", "nightly"), _dir.Combine("l"));

        // What PostgreSqlStore.CreateRun does up to a crash before its snapshot: the run_created event only.
        var store = new PostgreSqlRunStore(db, "halfway", _dir.Combine("l", "halfway"));
        var log = new PgRunLog(store, 0, 0, session: null) { Creating = true };
        var options = Create("halfway", "nightly");
        using (var recorder = new RunRecorder(log, new RunState { RunId = "halfway" }, new ItemLedger(), (_, _) => { }, TimeSpan.MaxValue))
        {
            recorder.Record(RunEvent.RunCreated("halfway", "nightly", options, Integrity.Sha256Hex(options.Script), null, Array.Empty<string>()), Durability.Durable);
        }

        Assert.Equal(0, Convert.ToInt32(_cluster.AdminScalar($"SELECT length(snapshot) FROM {schema}.runs WHERE run_id = 'halfway'"), System.Globalization.CultureInfo.InvariantCulture));

        var listed = Catalog(schema).EnumerateRuns(new RunFilter(), l => l).ToList();
        Assert.Equal(new[] { "halfway", "whole" }, listed.Select(l => l.RunId).ToArray());
        var half = listed[0];
        Assert.Null(half.Error);
        Assert.Equal(RunStatus.Created, half.State!.Status);
        Assert.Equal("nightly", half.State.Name);

        // The first snapshot replaces the placeholder as usual, and a second creation of the id is still refused.
        var again = Assert.Throws<RunToolsException>(() => db.CreateRun(Create("halfway", "nightly"), _dir.Combine("l")));
        Assert.Equal(ErrorIds.RunExists, again.ErrorId);
        Assert.Equal(2L, (long)_cluster.AdminScalar($"SELECT count(*) FROM {schema}.runs")!);
    }

    [Fact]
    public void A_folder_root_is_not_a_catalog() =>
        Assert.Equal(ErrorIds.InvalidArgument, Assert.Throws<RunToolsException>(() => RunCatalogs.Open(RootLocation.Parse(_dir.Path, p => p))).ErrorId);

    private IRunCatalog Catalog(string schema)
    {
        var builder = new NpgsqlConnectionStringBuilder(_cluster.AppConnectionString);
        string uri = $"postgresql://{Uri.EscapeDataString(builder.Username!)}:{Uri.EscapeDataString(builder.Password!)}@{Uri.EscapeDataString(builder.Host!)}:{builder.Port}/{Uri.EscapeDataString(builder.Database!)}?schema={schema}";
        var catalog = RunCatalogs.Open(RootLocation.Parse(uri, _ => throw new InvalidOperationException("not a folder")));
        Assert.StartsWith($"postgresql://{builder.Username}@", catalog.Display, StringComparison.Ordinal);
        Assert.DoesNotContain(builder.Password!, catalog.Display, StringComparison.Ordinal);
        return catalog;
    }

    private PostgreSqlStore Open(string schema)
    {
        var store = PostgreSqlStore.Open(_cluster.Options(schema, s_lease));
        _open.Add(store);
        return store;
    }

    /// <summary>An attempt left open (its owner alive) until the test ends.</summary>
    private RunAttempt Begin(PostgreSqlStore db, string runId)
    {
        if (!db.OpenRunExists(runId))
        {
            db.CreateRun(Create(runId, "attempted"), _dir.Combine("l"));
        }

        var local = new RunDirectory(_dir.Combine("local", runId), runId);
        Directory.CreateDirectory(local.Path);
        var attempt = RunAttempt.Begin(local, db.OpenRun(runId, local.Path), new AttemptOptions());
        _open.Add(attempt);
        return attempt;
    }

    private static RunCreateOptions Create(string runId, string name) => new() { Name = name, RunId = runId, Script = Runs.Bytes("# script") };
}

internal static class PostgreSqlStoreTestExtensions
{
    public static bool OpenRunExists(this PostgreSqlStore db, string runId)
    {
        try
        {
            db.OpenRun(runId, Path.GetTempPath());
            return true;
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.RunNotFound)
        {
            return false;
        }
    }
}
