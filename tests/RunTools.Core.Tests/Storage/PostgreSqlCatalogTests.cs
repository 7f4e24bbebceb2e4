using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;
using RunTools.Store.PostgreSql;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>Listing a database root (what Get-Run does with a postgresql:// -Root), on the real cluster.</summary>
[Collection(PostgreSqlCollection.Name)]
public sealed class PostgreSqlCatalogTests : PostgreSqlTestBase
{
    // Long enough that no heartbeat runs during a test: a lease expires only when a test says so.
    private static readonly TimeSpan s_lease = TimeSpan.FromMinutes(10);

    public PostgreSqlCatalogTests(PostgreSqlCluster cluster)
        : base(cluster)
    {
    }

    [Fact]
    public void Lists_every_run_in_id_order_with_the_status_a_reader_derives_and_the_state_folded_past_the_snapshot()
    {
        string schema = Cluster.NewSchema("list");
        var db = Open(schema, s_lease);
        db.CreateRun(Create("r1-created", "nightly_load"), Dir.Combine("l"));

        db.CreateRun(Create("r2-done", "nightlyXload"), Dir.Combine("l"));
        byte[] createdSnapshot = (byte[])Cluster.AdminScalar($"SELECT snapshot FROM {schema}.runs WHERE run_id = 'r2-done'")!;
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
        Cluster.Admin($"UPDATE {schema}.runs SET snapshot = decode('{Convert.ToHexString(createdSnapshot)}', 'hex'), journal_seq = 1, status = 'created' WHERE run_id = 'r2-done'");
        Begin(db, "r3-live");
        Begin(db, "r4-dead");
        Begin(db, "r5-stopping");
        db.OpenRun("r5-stopping", Dir.Combine("l")).RequestStop(new StopRequest { RequestedAt = DateTimeOffset.UtcNow, RequestedBy = "ops" });
        // r4's owner died: its lease ran out by the database's clock.
        Cluster.Admin($"UPDATE {schema}.leases SET expires_at = now() - interval '1 second' WHERE run_id = 'r4-dead'");

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
        var own = db.OpenRun("r2-done", Dir.Combine("r")).Snapshot.ReadStored();
        Assert.Equal((own.Status, own.ItemsCompleted, own.Journal.Sequence, own.UpdatedAt), (done.Status, done.ItemsCompleted, done.Journal.Sequence, done.UpdatedAt));
    }

    [Fact]
    public void Filters_run_in_the_query_with_like_s_characters_escaped_and_case_ignored()
    {
        string schema = Cluster.NewSchema("filter");
        var db = Open(schema, s_lease);
        db.CreateRun(Create("a-1", "nightly_load"), Dir.Combine("l"));
        db.CreateRun(Create("a-2", "nightlyXload"), Dir.Combine("l"));
        db.CreateRun(Create("b-1", "100% weekly"), Dir.Combine("l"));
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
    public void A_name_pattern_with_letters_beyond_ASCII_is_left_to_the_caller_whose_case_rules_differ_from_ILIKE()
    {
        string schema = Cluster.NewSchema("filter");
        var db = Open(schema, s_lease);
        db.CreateRun(Create("g-1", "Σίσυφος"), Dir.Combine("l"));
        db.CreateRun(Create("g-2", "plain"), Dir.Combine("l"));
        var catalog = Catalog(schema);

        // PowerShell matches 'ΣΊΣΥΦΟΣ' to 'Σίσυφος' (final sigma, accented iota); the database's
        // ILIKE does not. The query must not drop the run: every run comes back for the caller's match.
        Assert.Equal(new[] { "g-1", "g-2" }, catalog.EnumerateRuns(new RunFilter { NamePatterns = new[] { "ΣΊΣΥΦΟΣ" } }, l => l.RunId).ToList());
    }

    [Fact]
    public void Runs_across_batches_stream_in_id_order_and_the_caller_can_stop_early()
    {
        string schema = Cluster.NewSchema("batch");
        var db = Open(schema, s_lease);
        var ids = Enumerable.Range(0, 600).Select(i => $"run-{i:D4}").ToList();
        foreach (string id in ids.OrderBy(id => id.GetHashCode(StringComparison.Ordinal)))
        {
            db.CreateRun(Create(id, "bulk"), Dir.Combine("l"));
        }

        var catalog = Catalog(schema);

        Assert.Equal(ids, catalog.EnumerateRuns(new RunFilter(), l => l.State!.RunId));
        Assert.Equal(ids.Take(3), catalog.EnumerateRuns(new RunFilter(), l => l.RunId).Take(3));
    }

    [Fact]
    public void Runs_across_pages_are_each_listed_once_in_id_order_and_a_full_last_page_ends_with_an_empty_one()
    {
        string schema = Cluster.NewSchema("pages");
        var db = Open(schema, s_lease);
        var ids = Enumerable.Range(0, 45).Select(i => $"run-{i:D3}").ToList();
        foreach (string id in ids.Take(40))
        {
            db.CreateRun(Create(id, "bulk"), Dir.Combine("l"));
        }

        // Batches of 5, pages of 20: 40 runs are two full pages, then a query that finds none.
        var catalog = (PgRunCatalog)Catalog(schema);
        catalog.BatchSize = 5;
        int pages = 0;
        catalog.BeforePage = _ => pages++;
        Assert.Equal(ids.Take(40), catalog.EnumerateRuns(new RunFilter(), l => l.State!.RunId));
        Assert.Equal(3, pages);

        foreach (string id in ids.Skip(40))
        {
            db.CreateRun(Create(id, "bulk"), Dir.Combine("l"));
        }

        pages = 0;
        Assert.Equal(ids, catalog.EnumerateRuns(new RunFilter(), l => l.State!.RunId));
        Assert.Equal(3, pages);

        // A filter that SQL runs pages the same way: every third run.
        pages = 0;
        var status = ids.Where((_, i) => i % 3 == 0).ToList();
        foreach (string id in status)
        {
            Cluster.Admin($"UPDATE {schema}.runs SET name = 'picked' WHERE run_id = '{id}'");
        }

        Assert.Equal(status, catalog.EnumerateRuns(new RunFilter { NamePatterns = new[] { "pick*" } }, l => l.RunId));
        Assert.Equal(1, pages);
    }

    [Fact]
    public void A_page_whose_connection_drops_is_read_again_and_no_run_is_lost_or_doubled()
    {
        string schema = Cluster.NewSchema("pagedrop");
        var db = Open(schema, s_lease);
        var ids = Enumerable.Range(0, 45).Select(i => $"run-{i:D3}").ToList();
        foreach (string id in ids)
        {
            db.CreateRun(Create(id, "bulk"), Dir.Combine("l"));
        }

        var catalog = (PgRunCatalog)Catalog(schema);
        catalog.BatchSize = 5;
        int pages = 0;
        catalog.BeforePage = connection =>
        {
            if (++pages == 2)
            {
                // The server ends the session before the second page's query: it is sent again on a new one.
                Cluster.Terminate(connection.ProcessID);
            }
        };

        Assert.Equal(ids, catalog.EnumerateRuns(new RunFilter(), l => l.State!.RunId));
        Assert.Equal(4, pages);
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
        string schema = Cluster.NewSchema("half");
        var db = Open(schema, s_lease);
        db.CreateRun(Create("whole", "nightly"), Dir.Combine("l"));

        // What PostgreSqlStore.CreateRun does up to a crash before its snapshot: the run_created event only.
        var store = new PostgreSqlRunStore(db, "halfway", Dir.Combine("l", "halfway"));
        var log = new PgRunLog(store, 0, 0, session: null) { Creating = true };
        var options = Create("halfway", "nightly");
        using (var recorder = new RunRecorder(log, new RunState { RunId = "halfway" }, new ItemLedger(), (_, _) => { }, TimeSpan.MaxValue))
        {
            recorder.Record(RunEvent.RunCreated("halfway", "nightly", options, Integrity.Sha256Hex(options.Script), null, Array.Empty<string>()), Durability.Durable);
        }

        Assert.Equal(0, Convert.ToInt32(Cluster.AdminScalar($"SELECT length(snapshot) FROM {schema}.runs WHERE run_id = 'halfway'"), System.Globalization.CultureInfo.InvariantCulture));

        var listed = Catalog(schema).EnumerateRuns(new RunFilter(), l => l).ToList();
        Assert.Equal(new[] { "halfway", "whole" }, listed.Select(l => l.RunId).ToArray());
        var half = listed[0];
        Assert.Null(half.Error);
        Assert.Equal(RunStatus.Created, half.State!.Status);
        Assert.Equal("nightly", half.State.Name);

        // The first snapshot replaces the placeholder as usual, and a second creation of the id is still refused.
        var again = Assert.Throws<RunToolsException>(() => db.CreateRun(Create("halfway", "nightly"), Dir.Combine("l")));
        Assert.Equal(ErrorIds.RunExists, again.ErrorId);
        Assert.Equal(2L, (long)Cluster.AdminScalar($"SELECT count(*) FROM {schema}.runs")!);
    }

    [Fact]
    public void A_folder_root_is_not_a_catalog() =>
        Assert.Equal(ErrorIds.InvalidArgument, Assert.Throws<RunToolsException>(() => RunCatalogs.Open(RootLocation.Parse(Dir.Path, p => p))).ErrorId);

    /// <summary>An attempt left open (its owner alive) until the test ends.</summary>
    private RunAttempt Begin(PostgreSqlStore db, string runId)
    {
        if (!db.OpenRunExists(runId))
        {
            db.CreateRun(Create(runId, "attempted"), Dir.Combine("l"));
        }

        var local = new RunDirectory(Dir.Combine("local", runId), runId);
        Directory.CreateDirectory(local.Path);
        var attempt = RunAttempt.Begin(local, db.OpenRun(runId, local.Path), new AttemptOptions());
        return Track(attempt);
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
