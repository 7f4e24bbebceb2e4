using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Npgsql;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;
using RunTools.Store.PostgreSql;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>What only the PostgreSQL store has: leases, dropped connections, its schema, its role's rights.</summary>
[Collection(PostgreSqlCollection.Name)]
public sealed class PostgreSqlStoreTests : PostgreSqlTestBase
{
    public PostgreSqlStoreTests(PostgreSqlCluster cluster)
        : base(cluster)
    {
    }

    [Fact]
    public void A_lease_that_expired_is_taken_over_and_the_late_holder_is_fenced()
    {
        string schema = Cluster.NewSchema("lease");
        var lease = TimeSpan.FromSeconds(1);
        var first = Open(schema, lease).CreateRun(Create("lease"), Dir.Combine("1"));
        var late = (PgLease)first.Acquire(DateTimeOffset.UtcNow);
        var lateLog = first.OpenLog(first.ScanLog(null), out _);
        var second = Open(schema, lease).OpenRun("lease", Dir.Combine("2"));

        // Alive: the heartbeat keeps it past its first expiry, and a second owner is refused by name.
        Thread.Sleep(lease + lease);
        var refused = Assert.Throws<RunLockedException>(() => second.Acquire(DateTimeOffset.UtcNow));
        Assert.Equal(Environment.ProcessId, refused.Owner?.ProcessId);
        late.ThrowIfLost();

        // Paused (a stopped process, a cut network): the lease expires and is taken over.
        late.PauseHeartbeat();
        lateLog.Append(RunEvent.StepStarted("late", 1, itemsOnly: false, previous: null), DateTimeOffset.UtcNow);
        Thread.Sleep(lease + TimeSpan.FromMilliseconds(300));
        using var owner = second.Acquire(DateTimeOffset.UtcNow);

        // The late holder learns it at its next boundary, and its pending event never lands, even
        // though no event of the new owner's is in its way yet: the lease fences the commit.
        var lost = Assert.Throws<RunToolsException>(late.ThrowIfLost);
        Assert.Equal(ErrorIds.NotOwner, lost.ErrorId);
        Assert.Contains($"process {owner.Holder}", lost.Message, StringComparison.Ordinal);
        var fenced = Assert.Throws<RunToolsException>(() => lateLog.MakeDurable(lateLog.LastSequence));
        Assert.Equal(ErrorIds.NotOwner, fenced.ErrorId);
        var state = new RunState { RunId = "lease" };
        Assert.Equal(ErrorIds.NotOwner, Assert.Throws<RunToolsException>(() => first.Snapshot.Replace(state, Runs.Bytes("{}"))).ErrorId);

        using (var log = second.OpenLog(second.ScanLog(null), out _))
        {
            var (sequence, _) = log.Append(RunEvent.StepStarted("current", 2, itemsOnly: false, previous: null), DateTimeOffset.UtcNow);
            log.MakeDurable(sequence);
            Assert.Equal(2, sequence);
        }

        var steps = Steps(second);
        Assert.Equal(new[] { "current" }, steps);
        late.Dispose();
        lateLog.Dispose();

        // The late holder's release does not release the new owner's lease.
        Assert.Throws<RunLockedException>(() => Open(schema, lease).OpenRun("lease", Dir.Combine("3")).Acquire(DateTimeOffset.UtcNow));
    }

    [Fact]
    public void Dropped_connections_are_retried_and_nothing_is_lost_or_doubled()
    {
        string schema = Cluster.NewSchema("drop");
        var store = Open(schema).CreateRun(Create("drop"), Dir.Combine("1"));
        using var ownership = store.Acquire(DateTimeOffset.UtcNow);
        using var log = store.OpenLog(store.ScanLog(null), out _);

        // Every idle pooled connection dies (a failover, a restart, an administrator): the next commit retries.
        var (first, _) = log.Append(RunEvent.StepStarted("a", 1, itemsOnly: false, previous: null), DateTimeOffset.UtcNow);
        Assert.True(TerminateAppBackends() > 0);
        log.MakeDurable(first);

        // The commit lands but its answer is lost with the connection: the retry recognises its own rows.
        var (second, _) = log.Append(RunEvent.StepStarted("b", 1, itemsOnly: false, previous: null), DateTimeOffset.UtcNow);
        byte[] line = log.LastLine.ToArray();
        bool answerLost = false;
        ((PostgreSqlRunStore)store).FaultPoint = (point, connection) =>
        {
            if (point == "log_commit" && second > log.DurableSequence)
            {
                ((PostgreSqlRunStore)store).FaultPoint = null;
                using (var command = new NpgsqlCommand($"INSERT INTO {((PostgreSqlRunStore)store).S}.events VALUES ('drop', {second}, 'step_started', @line)", connection))
                {
                    command.Parameters.AddWithValue("line", line);
                    command.ExecuteNonQuery();
                }

                Cluster.Terminate(connection.ProcessID);
                answerLost = true;
            }
        };
        log.MakeDurable(second);
        Assert.True(answerLost);

        Assert.Equal(new[] { "a", "b" }, Steps(Open(schema).OpenRun("drop", Dir.Combine("2"))));
        Assert.Equal(3L, Scalar($"SELECT count(*) FROM {schema}.events WHERE run_id = 'drop'"));
    }

    [Fact]
    public void A_blob_read_survives_a_dropped_connection_between_chunks()
    {
        string schema = Cluster.NewSchema("read");
        var store = Open(schema).CreateRun(Create("read"), Dir.Combine("1"));
        byte[] content = new byte[(256 * 1024 * 2) + 5];
        new Random(3).NextBytes(content);
        var blob = store.Blobs.WriteArtifact("x.bin", 1, new MemoryStream(content));

        using var stream = store.Blobs.OpenRead(blob.Name);
        byte[] head = new byte[1000];
        Assert.Equal(1000, stream.Read(head, 0, head.Length));
        Assert.True(TerminateAppBackends() > 0);
        using var rest = new MemoryStream();
        stream.CopyTo(rest);

        Assert.Equal(content, head.Concat(rest.ToArray()).ToArray());
    }

    [Fact]
    public void The_schema_is_created_from_empty_and_a_second_open_changes_nothing()
    {
        string schema = Cluster.NewSchema("mig");
        var stores = new ConcurrentBag<PostgreSqlStore>();
        Parallel.For(0, 4, _ => stores.Add(PostgreSqlStore.Open(Cluster.Options(schema))));
        foreach (var store in stores)
        {
            Track(store);
        }

        // Four first uses at once: exactly one applied the migrations, in order.
        Assert.Equal(new[] { 1, 2, 3 }, stores.SelectMany(s => s.AppliedMigrations).ToArray());
        Assert.Equal(3, Convert.ToInt32(Scalar($"SELECT max(version) FROM {schema}.schema_version"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(11L, Scalar($"SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}'"));
        Assert.Equal(1L, Scalar($"SELECT count(*) FROM pg_indexes WHERE schemaname = '{schema}' AND indexname = 'runs_by_ordinal_id'"));

        stores.First().CreateRun(Create("kept"), Dir.Combine("1"));
        var again = Open(schema);
        Assert.Empty(again.AppliedMigrations);
        Assert.Equal(RunStatus.Created, again.OpenRun("kept", Dir.Combine("2")).Snapshot.ReadStored().Status);

        // A schema a newer RunTools migrated further is refused, not misread.
        Cluster.Admin($"INSERT INTO {schema}.schema_version (version) VALUES (99)");
        var newer = Assert.Throws<RunToolsException>(() => PostgreSqlStore.Open(Cluster.Options(schema)));
        Assert.Equal(ErrorIds.StoreSchemaUnusable, newer.ErrorId);
        Assert.Contains("version 99", newer.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_role_with_rights_on_its_schema_only_works_there_and_gets_a_clear_error_elsewhere()
    {
        // The role can do nothing outside its own schemas...
        var denied = Assert.Throws<PostgresException>(() => PostgreSqlCluster.Execute(Cluster.AppConnectionString, "CREATE SCHEMA not_mine"));
        Assert.Equal("42501", denied.SqlState);
        Assert.Equal("42501", Assert.Throws<PostgresException>(() => PostgreSqlCluster.Execute(Cluster.AppConnectionString, "CREATE TABLE public.t (a int)")).SqlState);

        // ...and the store works in the schema made for it (it does not try to create an existing one).
        string schema = Cluster.NewSchema("own");
        var store = Open(schema).CreateRun(Create("own"), Dir.Combine("1"));
        using (store.Acquire(DateTimeOffset.UtcNow))
        {
            store.Blobs.WriteArtifact("a.txt", 1, new MemoryStream(Runs.Bytes("a")));
        }

        // A schema that is missing and that the role may not create: what to ask an administrator for, no password.
        var error = Assert.Throws<RunToolsException>(() => PostgreSqlStore.Open(Cluster.Options("missing_schema")));
        Assert.Equal(ErrorIds.StoreSchemaUnusable, error.ErrorId);
        Assert.Contains("CREATE SCHEMA missing_schema AUTHORIZATION", error.Message, StringComparison.Ordinal);
        AssertNoPassword(error, Cluster.AppConnectionString);
    }

    [Fact]
    public void A_wrong_password_is_a_clear_error_that_never_shows_a_password()
    {
        var builder = new NpgsqlConnectionStringBuilder(Cluster.AppConnectionString) { Password = "Wr0ng-Secret-41" };
        var options = Cluster.Options("runtools");
        options.ConnectionString = builder.ConnectionString;

        var error = Assert.Throws<RunToolsException>(() => PostgreSqlStore.Open(options));

        Assert.Equal(ErrorIds.StoreUnavailable, error.ErrorId);
        Assert.Contains("postgresql://runtools@", error.Message, StringComparison.Ordinal);
        AssertNoPassword(error, builder.ConnectionString);
        AssertNoPassword(error, Cluster.AppConnectionString);
    }

    [Fact]
    public void A_whole_attempt_runs_on_the_store_and_a_resume_continues_from_it()
    {
        string schema = Cluster.NewSchema("attempt");
        var db = Open(schema);
        db.CreateRun(Create("nightly"), Dir.Combine("local"));

        // The engine's local folder keeps only the attempt logs (not behind the seam yet).
        var local = new RunDirectory(Dir.Combine("local", "nightly"), "nightly");
        Directory.CreateDirectory(local.Path);
        using (var first = RunAttempt.Begin(local, db.OpenRun("nightly", local.Path), new AttemptOptions()))
        {
            Assert.Equal(StepAction.Run, first.BeginStep("extract"));
            first.CompleteStep("extract", Runs.Bytes("<Objs>files</Objs>"), "clixml");
            first.BeginStep("upload");
            foreach (string key in new[] { "a", "b" })
            {
                Assert.Equal(ItemAction.Run, first.BeginItem("upload", key));
                first.CompleteItem("upload", key, Runs.Bytes("sent " + key));
            }

            Assert.Equal(ItemAction.Run, first.BeginItem("upload", "c"));

            // The process dies here: c is in doubt (disposing releases the lease, as its expiry would).
        }

        // Another machine: a fresh store instance, its own local folder.
        var otherLocal = new RunDirectory(Dir.Combine("other", "nightly"), "nightly");
        Directory.CreateDirectory(otherLocal.Path);
        var reopened = Open(schema).OpenRun("nightly", otherLocal.Path);
        Assert.Equal(RunStatus.Running, reopened.Snapshot.ReadStored().Status);
        RunState final;
        using (var second = RunAttempt.Begin(otherLocal, reopened, new AttemptOptions()))
        {
            Assert.Equal(2, second.Attempt);
            Assert.Equal("c", Assert.Single(second.Plan.InDoubt).Key);
            Assert.Equal(StepAction.Replay, second.BeginStep("extract"));
            Assert.Equal("<Objs>files</Objs>", Runs.Text(second.ReadStepOutput("extract")));
            second.BeginStep("upload");
            Assert.Equal(ItemAction.Replay, second.BeginItem("upload", "a"));
            Assert.Equal("sent a", Runs.Text(second.ReadItemOutput("upload", "a")));
            Assert.Equal(ItemAction.Replay, second.BeginItem("upload", "b"));
            Assert.Equal(ItemAction.Run, second.BeginItem("upload", "c"));
            second.CompleteItem("upload", "c", Runs.Bytes("sent c"));
            second.CompleteStep("upload", null);
            final = second.Complete();
        }

        Assert.Equal(RunStatus.Completed, final.Status);
        var stored = Open(schema).OpenRun("nightly", Dir.Combine("reader"));
        var state = stored.Snapshot.ReadStored();
        Assert.Equal(RunStatus.Completed, state.Status);
        Assert.Equal(3, state.ItemsCompleted);
        Assert.Equal(2, state.Attempt);
        Assert.Equal(state.Journal.Sequence, Convert.ToInt64(Scalar($"SELECT journal_seq FROM {schema}.runs WHERE run_id = 'nightly'"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("completed", Scalar($"SELECT status FROM {schema}.runs WHERE run_id = 'nightly'"));

        var types = new TypesSeen();
        var scan = stored.ScanLog(types);
        Assert.Empty(scan.SequenceGaps);
        Assert.Equal(JournalEventTypes.RunCreated, types.Types[0]);
        Assert.Equal(3, types.Types.Count(t => t == JournalEventTypes.ItemCompleted));
        Assert.Equal(4, types.Types.Count(t => t == JournalEventTypes.ItemStarted)); // c twice: once in doubt
        Assert.Equal(JournalEventTypes.RunCompleted, types.Types[^1]);
        Assert.Null(stored.ReadLeaseHolder());
    }

    [Fact]
    public void Idle_connections_close_within_seconds_so_a_session_that_visits_many_roots_does_not_hold_the_servers_slots()
    {
        // The session keeps every root's store; each store's pool must let its connections go when idle.
        string application = "RunTools-idle-" + Guid.NewGuid().ToString("N").Substring(0, 8);
        var options = Cluster.Options(Cluster.NewSchema("idle"));
        options.ConnectionString += ";Application Name=" + application;
        var store = Track(PostgreSqlStore.Open(options));
        store.CreateRun(Create("idle"), Dir.Combine("idle"));
        int Connections() => Convert.ToInt32(Cluster.AdminScalar($"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application}'"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Connections() > 0, "the store kept no pooled connection to let go of");

        var idle = System.Diagnostics.Stopwatch.StartNew();
        while (Connections() > 0 && idle.Elapsed < TimeSpan.FromSeconds(40))
        {
            Thread.Sleep(250);
        }

        Assert.Equal(0, Connections());
        Assert.True(idle.Elapsed < TimeSpan.FromSeconds(3 * PgDatabase.IdleLifetimeSeconds), $"closed after {idle.Elapsed.TotalSeconds:0.0} s");
    }

    private static RunCreateOptions Create(string runId) => new() { Name = "test", RunId = runId, Script = Runs.Bytes("# script") };

    private object? Scalar(string sql) => Cluster.AdminScalar(sql);

    /// <summary>Ends every connection of the app role (pooled idle ones included); returns how many there were.</summary>
    private long TerminateAppBackends() =>
        (long)Cluster.AdminScalar($"SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE usename = '{Cluster.AppRole}'")!;

    private static List<string> Steps(IRunStore store)
    {
        var seen = new TypesSeen();
        store.ScanLog(seen);
        return seen.Steps;
    }

    private static void AssertNoPassword(Exception error, string connectionString)
    {
        string password = new NpgsqlConnectionStringBuilder(connectionString).Password!;
        for (var e = error; e is not null; e = e.InnerException)
        {
            Assert.DoesNotContain(password, e.Message, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(password, error.ToString(), StringComparison.Ordinal);
    }

    private sealed class TypesSeen : IJournalVisitor
    {
        public List<string> Types { get; } = new();

        public List<string> Steps { get; } = new();

        public bool WantsTimestamp => false;

        public void Visit(in ParsedLine line, long offset, ReadOnlySpan<byte> raw)
        {
            Types.Add(line.Type);
            if (line.Type == JournalEventTypes.StepStarted && line.Step is not null)
            {
                Steps.Add(line.Step);
            }
        }
    }
}
