using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using System.Text.Json;
using Npgsql;
using RunTools.Core.Archive;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.State;
using RunTools.Core.Storage;
using RunTools.Store.PostgreSql;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>
/// Archives move runs between a folder and a database, both ways (Export-RunArchive of a run in a
/// database, Import-RunArchive -Root postgresql://...), on the real cluster: the same files and
/// state at every stage, and an import cut short leaves nothing in the database.
/// </summary>
[Collection(PostgreSqlCollection.Name)]
public sealed class PostgreSqlArchiveTests : PostgreSqlTestBase
{
    private readonly RunsRoot _folder;

    public PostgreSqlArchiveTests(PostgreSqlCluster cluster)
        : base(cluster)
    {
        _folder = new RunsRoot(Dir.Combine("runs"));
    }

    [Fact]
    public void A_folder_run_goes_into_the_database_and_back_with_the_same_journal_files_and_state()
    {
        string schema = Cluster.NewSchema("arch");
        var catalog = Catalog(schema);
        var original = CompletedFolderRun("r1");

        string first = Export(original, "first");
        var stored = RunArchive.Import(first, catalog);

        Assert.NotNull(stored.Database);
        Assert.Equal(JournalLines(original), EventLines(schema, "r1"));
        Assert.Equal(File.ReadAllBytes(original.StatePath), (byte[])Cluster.AdminScalar($"SELECT snapshot FROM {schema}.runs WHERE run_id = 'r1'")!);
        Assert.Equal(StateJson(original), StateJson(stored));
        var test = stored.Test(cancellation: TestContext.Current.CancellationToken);
        Assert.True(test.IsValid, string.Join("; ", test.Problems));
        Assert.Equal(original.Test(cancellation: TestContext.Current.CancellationToken).FilesChecked, test.FilesChecked);
        Assert.Empty(RunComparer.Compare(original, stored));
        // The attempt log is not the database's: it went to the run's local folder on this machine.
        Assert.True(File.Exists(Path.Combine(stored.Path, "logs", "attempt-1.log")));

        string second = Export(stored, "second");
        var back = RunArchive.Import(second, new RunsRoot(Dir.Combine("back")));

        AssertSameFiles(original.Path, back.Path);
        Assert.Equal(StateJson(original), StateJson(back));
        Assert.True(back.Test(cancellation: TestContext.Current.CancellationToken).IsValid);
        Assert.Empty(RunComparer.Compare(original, back));
    }

    [Fact]
    public void A_run_whose_archived_snapshot_is_behind_its_events_is_filtered_by_its_folded_status()
    {
        string schema = Cluster.NewSchema("arch");
        var catalog = Catalog(schema);
        var run = Runs.Create(_folder, "behind");
        byte[] midRun;
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("a");
            attempt.CompleteStep("a", null);
            midRun = File.ReadAllBytes(run.StatePath);
            attempt.BeginStep("b");
            attempt.CompleteStep("b", null);
            attempt.Complete();
        }

        // As a crash between a journal write and run.json's leaves it: the snapshot says Running.
        File.WriteAllBytes(run.StatePath, midRun);
        Assert.Equal(RunStatus.Running, JsonSerializer.Deserialize<RunState>(midRun, RunFormat.JsonOptions)!.Status);
        RunArchive.Import(Export(run, "behind"), catalog);

        Assert.Equal("completed", Cluster.AdminScalar($"SELECT status FROM {schema}.runs WHERE run_id = 'behind'"));
        var completed = catalog.EnumerateRuns(new RunFilter { Statuses = new[] { RunStatus.Completed } }, l => l.RunId).ToList();
        Assert.Equal(new[] { "behind" }, completed);
        Assert.Empty(catalog.EnumerateRuns(new RunFilter { Statuses = new[] { RunStatus.Running, RunStatus.Interrupted } }, l => l.RunId));
    }

    [Fact]
    public void A_run_started_in_the_database_is_exported_as_its_rows_say_and_resumes_as_a_folder()
    {
        string schema = Cluster.NewSchema("arch");
        var catalog = Catalog(schema);
        var run = catalog.CreateRun(new RunCreateOptions { Name = "nightly", RunId = "d1", Script = Runs.Bytes("# nightly"), Config = Config("eu") });
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("prepare");
            attempt.CompleteStep("prepare", Runs.Bytes("<Objs>prepared</Objs>"), "clixml");
            attempt.BeginStep("work");
            attempt.BeginItem("work", "a");
            attempt.CompleteItem("work", "a", Runs.Bytes("done a"));
            attempt.BeginItem("work", "b");

            // Killed here: b is in doubt, the run Interrupted once its owner is gone.
        }

        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        var refused = Assert.Throws<RunToolsException>(() => Export(run, "refused", force: false));
        Assert.Equal(ErrorIds.ArchiveRunNotCompleted, refused.ErrorId);

        var exported = RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = Dir.Combine("out", "d1.zip"), Force = true });
        Assert.True(exported.Manifest.Forced);
        Assert.Equal(RunStatus.Interrupted, exported.Manifest.Run.Status);
        Assert.Empty(exported.Warnings);
        using (var zip = ZipFile.OpenRead(exported.Path))
        {
            Assert.Equal(EventLines(schema, "d1"), Lines(Entry(zip, RunFormat.JournalFile)));
            Assert.Equal((byte[])Cluster.AdminScalar($"SELECT snapshot FROM {schema}.runs WHERE run_id = 'd1'")!, Entry(zip, RunFormat.StateFile));
            Assert.Equal(Runs.Bytes("# nightly"), Entry(zip, RunFormat.ScriptFile));
            Assert.Equal("<Objs>prepared</Objs>", Runs.Text(Entry(zip, "steps/prepare/output.clixml")));
            Assert.Contains(RunFormat.ConfigFile, zip.Entries.Select(e => e.FullName));
        }

        var folder = RunArchive.Import(exported.Path, _folder);
        Assert.Equal(StateJson(run), StateJson(folder));
        Assert.True(folder.Test(cancellation: TestContext.Current.CancellationToken).IsValid);
        Assert.Equal("eu", (string?)folder.ReadConfig().Root["region"]);

        using (var resumed = folder.BeginAttempt())
        {
            Assert.Equal(2, resumed.Attempt);
            Assert.Equal("b", Assert.Single(resumed.Plan.InDoubt).Key);
            Assert.Equal(StepAction.Replay, resumed.BeginStep("prepare"));
            Assert.Equal("<Objs>prepared</Objs>", Runs.Text(resumed.ReadStepOutput("prepare")));
            resumed.BeginStep("work");
            Assert.Equal(ItemAction.Replay, resumed.BeginItem("work", "a"));
            Assert.Equal(ItemAction.Run, resumed.BeginItem("work", "b"));
            resumed.CompleteItem("work", "b", Runs.Bytes("done b"));
            resumed.CompleteStep("work", null);
            Assert.Equal(RunStatus.Completed, resumed.Complete().Status);
        }
    }

    [Fact]
    public void A_database_run_a_live_owner_holds_is_not_exported()
    {
        var catalog = Catalog(Cluster.NewSchema("arch"));
        var run = catalog.CreateRun(new RunCreateOptions { Name = "busy", RunId = "b1", Script = Runs.Bytes("# busy") });
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("one");

        var error = Assert.ThrowsAny<RunToolsException>(() => Export(run, "busy", force: true));
        Assert.Equal(ErrorIds.RunLocked, error.ErrorId);
        Assert.False(File.Exists(Dir.Combine("busy", "b1.zip")));
        Assert.Empty(Directory.Exists(Dir.Combine("busy")) ? Directory.GetFiles(Dir.Combine("busy")) : Array.Empty<string>());
    }

    [Theory]
    [InlineData("import_events")]
    [InlineData("import_blob")]
    [InlineData("blob_write")]
    [InlineData("import_commit")]
    public void An_import_that_fails_midway_leaves_nothing_in_the_database(string point)
    {
        string schema = Cluster.NewSchema("arch");
        var catalog = Catalog(schema);
        string archive = Export(CompletedFolderRun("r1"), "out");

        PgRunImport.FaultPoint = (at, _) =>
        {
            if (at == point)
            {
                throw new IOException("injected at " + at);
            }
        };
        Assert.Throws<IOException>(() => RunArchive.Import(archive, catalog));
        PgRunImport.FaultPoint = null;
        AssertNothingStored(schema);
        Assert.False(Directory.Exists(LocalFolders.ForRun(RootLocation.Parse(Uri(schema), _ => throw new InvalidOperationException()), "r1")));

        // Nothing stands in the way of the same import afterwards.
        var stored = RunArchive.Import(archive, catalog);
        Assert.True(stored.Test(cancellation: TestContext.Current.CancellationToken).IsValid);
    }

    [Fact]
    public void A_connection_dropped_before_the_commit_leaves_nothing_and_says_the_store_was_unavailable()
    {
        string schema = Cluster.NewSchema("arch");
        var catalog = Catalog(schema);
        string archive = Export(CompletedFolderRun("r1"), "out");

        PgRunImport.FaultPoint = (at, connection) =>
        {
            if (at == "import_commit")
            {
                Cluster.Admin($"SELECT pg_terminate_backend({connection.ProcessID})");
            }
        };
        var error = Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, catalog));
        PgRunImport.FaultPoint = null;

        Assert.Equal(ErrorIds.StoreUnavailable, error.ErrorId);
        AssertNothingStored(schema);
    }

    [Fact]
    public void An_archive_whose_bytes_were_altered_is_refused_midway_and_leaves_nothing()
    {
        string schema = Cluster.NewSchema("arch");
        string archive = Export(CompletedFolderRun("r1"), "out");
        using (var zip = ZipFile.Open(archive, ZipArchiveMode.Update))
        {
            // Same size, other bytes: only the hash read at the end of the entry can tell.
            var entry = zip.GetEntry("artifacts/frames/a0001.txt")!;
            byte[] bytes;
            using (var stream = entry.Open())
            using (var copy = new MemoryStream())
            {
                stream.CopyTo(copy);
                bytes = copy.ToArray();
            }

            bytes[0] ^= 0x20;
            entry.Delete();
            using var replaced = zip.CreateEntry("artifacts/frames/a0001.txt").Open();
            replaced.Write(bytes, 0, bytes.Length);
        }

        var error = Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, Catalog(schema)));
        Assert.Equal(ErrorIds.ArchiveHashMismatch, error.ErrorId);
        AssertNothingStored(schema);
    }

    [Fact]
    public void An_import_over_a_taken_id_is_refused_unless_forced_and_then_replaces_the_run()
    {
        string schema = Cluster.NewSchema("arch");
        var catalog = Catalog(schema);
        var existing = catalog.CreateRun(new RunCreateOptions { Name = "other", RunId = "r1", Script = Runs.Bytes("# other") });
        string before = StateJson(existing);
        string archive = Export(CompletedFolderRun("r1"), "out");

        var refused = Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, catalog));
        Assert.Equal(ErrorIds.RunExists, refused.ErrorId);
        Assert.Equal(before, StateJson(catalog.OpenRun("r1")));

        var replaced = RunArchive.Import(archive, catalog, new ArchiveImportOptions { Force = true });
        Assert.Equal(StateJson(_folder.OpenRun("r1")), StateJson(replaced));
        Assert.True(replaced.Test(cancellation: TestContext.Current.CancellationToken).IsValid);
        Assert.Equal("0", Cluster.AdminScalar($"SELECT count(*) FROM {schema}.leases")!.ToString());
        Assert.Equal("0", Cluster.AdminScalar($"SELECT count(*) FROM {schema}.blob_contents c WHERE NOT EXISTS (SELECT 1 FROM {schema}.blobs b WHERE b.content_id = c.id)")!.ToString());
    }

    private RunDirectory CompletedFolderRun(string id)
    {
        var run = Runs.Create(_folder, id, new Dictionary<string, object?> { ["region"] = "eu" });
        string source = Dir.Combine("artifact-source-" + id);
        Directory.CreateDirectory(source);
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("prepare");
            attempt.CompleteStep("prepare", Runs.Bytes("<Objs>prepared</Objs>"), "clixml");
            attempt.BeginStep("work");
            for (int i = 0; i < 5; i++)
            {
                attempt.BeginItem("work", "k" + i);
                attempt.CompleteItem("work", "k" + i, Runs.Bytes("out" + i));
            }

            attempt.CompleteStep("work", null);
            attempt.BeginStep("report");
            for (int i = 0; i < 3; i++)
            {
                string file = Path.Combine(source, $"a{i:D4}.txt");
                File.WriteAllText(file, $"artifact {i} " + new string('x', 70_000 * i)); // more than one 256 KiB chunk for the last
                attempt.AddArtifact(file, $"frames/a{i:D4}.txt");
            }

            attempt.CompleteStep("report", null);
            attempt.Complete();
        }

        return run;
    }

    private string Export(RunDirectory run, string folder, bool force = false) =>
        RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = Dir.Combine(folder), Force = force }).Path;

    private List<string> EventLines(string schema, string runId)
    {
        var lines = new List<string>();
        using var connection = new NpgsqlConnection(Cluster.AdminConnectionString);
        connection.Open();
        using var command = new NpgsqlCommand($"SELECT line FROM {schema}.events WHERE run_id = @run ORDER BY seq", connection);
        command.Parameters.AddWithValue("run", runId);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            lines.Add(Encoding.UTF8.GetString((byte[])reader[0]));
        }

        return lines;
    }

    private static List<string> JournalLines(RunDirectory run) => Lines(File.ReadAllBytes(run.JournalPath));

    /// <summary>A journal's lines; every one must end with a newline.</summary>
    private static List<string> Lines(byte[] journal)
    {
        string text = Encoding.UTF8.GetString(journal);
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        return text.Substring(0, text.Length - 1).Split('\n').ToList();
    }

    private static byte[] Entry(ZipArchive zip, string name)
    {
        using var stream = zip.GetEntry(name)!.Open();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static EffectiveConfig Config(string region) =>
        EffectiveConfig.FromDictionary(new System.Collections.Hashtable { ["region"] = region });

    private static string StateJson(RunDirectory run) => JsonSerializer.Serialize(run.ReadState(), RunFormat.JsonOptions);

    private static void AssertSameFiles(string expectedRun, string actualRun)
    {
        var expected = RelativeFiles(expectedRun);
        Assert.Contains(RunFormat.JournalFile, expected);
        Assert.Equal(expected, RelativeFiles(actualRun));
        foreach (string file in expected)
        {
            Assert.True(File.ReadAllBytes(Path.Combine(expectedRun, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actualRun, file))), $"{file} differs");
        }
    }

    private static List<string> RelativeFiles(string run) =>
        Directory.EnumerateFiles(run, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(run, f).Replace('\\', '/'))
            .Where(f => f != RunFormat.LockFile)
            .OrderBy(f => f, StringComparer.Ordinal)
            .ToList();
}
