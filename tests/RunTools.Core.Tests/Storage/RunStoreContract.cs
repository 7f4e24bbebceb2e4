using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Tasks;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>
/// What every run store must do for the engine (<see cref="IRunStore"/>): the folder store passes
/// it (<see cref="FileRunStoreTests"/>), and a database store derives from it too. Each test uses
/// a fresh run; a "reopened" store is a second instance of the same run, as another process sees it.
/// </summary>
public abstract class RunStoreContract
{
    /// <summary>A store for a new run, created as Start-Run creates one (run_created recorded, snapshot written).</summary>
    internal abstract IRunStore CreateRun(string runId);

    /// <summary>Another instance of the same run's store, sharing nothing in memory with <paramref name="store"/>.</summary>
    internal abstract IRunStore Reopen(IRunStore store);

    /// <summary>Makes the store's next blob write fail at <paramref name="stage"/> ("write", "sync" or "commit") as its medium would; dispose to end the fault.</summary>
    internal abstract IDisposable FailNextBlobWrite(IRunStore store, string stage);

    /// <summary>Changes a stored blob's bytes (same size) behind the store's back: bit rot, a tampering user.</summary>
    internal abstract void Corrupt(IRunStore store, string name);

    /// <summary>Requests a stop as Stop-Run does.</summary>
    internal abstract void RequestStop(IRunStore store, string reason);

    /// <summary>After a failed write: the store holds no partial blob (temp files, unfinished rows) either.</summary>
    internal virtual void AssertNoPartialBlobs(IRunStore store)
    {
    }

    [Fact]
    public void Appended_events_are_durable_and_read_back_by_another_instance()
    {
        var store = CreateRun("log");
        var scan = store.ScanLog(null);
        Assert.True(scan.ValidLines >= 1);
        long started;
        long completed;
        using (var log = store.OpenLog(scan, out string? keptTail))
        {
            Assert.Null(keptTail);
            Assert.Equal(scan.LastSequence, log.LastSequence);
            long locator;
            (started, locator) = log.Append(RunEvent.StepStarted("s", 1, itemsOnly: false, previous: null), DateTimeOffset.UtcNow);
            (completed, _) = log.Append(RunEvent.StepCompleted("s", 1, 12, null), DateTimeOffset.UtcNow);
            log.MakeDurable(completed);

            Assert.Equal(scan.LastSequence + 1, started);
            Assert.Equal(started + 1, completed);
            Assert.True(log.DurableSequence >= completed);
            Assert.Equal(JournalEventTypes.StepStarted, log.ReadEvent(locator)?.Type);
        }

        var seen = new TypesSeen();
        var again = Reopen(store).ScanLog(seen);
        Assert.Equal(completed, again.LastSequence);
        Assert.Equal(0, again.TornTailLength);
        Assert.Equal(new[] { JournalEventTypes.StepStarted, JournalEventTypes.StepCompleted }, seen.Types.Skip(seen.Types.Count - 2));
        Assert.Equal(JournalEventTypes.RunCreated, seen.Types[0]);
    }

    [Fact]
    public void A_snapshot_round_trips_and_says_where_in_the_log_it_stands()
    {
        var store = CreateRun("snap");
        var plan = ResumePlanner.Plan(store, verifyArtifacts: false).Plan;
        long last;
        using (var recorder = new RunRecorder(store.OpenLog(plan.Journal, out _), plan.State, plan.Ledger, store.Snapshot.Replace, TimeSpan.MaxValue))
        {
            recorder.Record(RunEvent.StepStarted("train", 1, itemsOnly: false, previous: null));
            recorder.Record(RunEvent.StepCompleted("train", 1, 5, null));
            recorder.Snapshot();
            last = recorder.LastSequence;
        }

        var reopened = Reopen(store);
        Assert.True(reopened.Snapshot.Exists);
        var stored = reopened.Snapshot.ReadStored();
        Assert.Equal("snap", stored.RunId);
        Assert.Equal(StepStatus.Completed, stored.FindStep("train")?.Status);
        Assert.Equal(last, stored.Journal.Sequence);
    }

    [Fact]
    public void Ownership_is_exclusive_and_a_refused_acquirer_is_told_who_holds_the_run()
    {
        var store = CreateRun("own");
        int pid = Environment.ProcessId;
        using (var first = store.Acquire(DateTimeOffset.UtcNow))
        {
            Assert.Equal(pid, first.Holder.ProcessId);
            first.ThrowIfLost();

            var refused = Assert.Throws<RunLockedException>(() => Reopen(store).Acquire(DateTimeOffset.UtcNow).Dispose());
            Assert.Equal(ErrorIds.RunLocked, refused.ErrorId);
            Assert.Equal(pid, refused.Owner?.ProcessId);
            Assert.Equal(first.Holder.Host, refused.Owner?.Host);
        }

        // Released: the next owner gets it.
        using var second = Reopen(store).Acquire(DateTimeOffset.UtcNow);
        Assert.Equal(pid, second.Holder.ProcessId);
    }

    [Fact]
    public void A_blob_is_stored_with_the_hash_of_its_bytes_and_reads_back_intact()
    {
        var store = CreateRun("blob");
        byte[] content = RandomBytes(300_000, seed: 1); // several buffers' worth: hashed while streamed
        var blob = store.Blobs.WriteStepOutput("s", 1, "clixml", new MemoryStream(content));

        Assert.Equal(content.Length, blob.Size);
        Assert.Equal(Sha256(content), blob.Sha256);
        var other = Reopen(store);
        Assert.True(other.Blobs.Exists(blob.Name));
        Assert.Equal(content, ReadAll(other.Blobs, blob.Name));
        Assert.Equal(content, File.ReadAllBytes(other.Blobs.LocalFile(blob.Name)));
        Assert.Empty(other.Blobs.Verify(new[] { new RecordedFile(blob.Name, blob.Size, blob.Sha256, "s", null) }, cancellation: TestContext.Current.CancellationToken));
    }

    [Fact]
    public void A_staged_step_output_is_stored_and_its_staging_file_removed()
    {
        var store = CreateRun("staged");
        string staging = store.Blobs.NewStagingFile("s");
        byte[] content = RandomBytes(100_000, seed: 6);
        File.WriteAllBytes(staging, content);

        var blob = store.Blobs.TakeStagingFile("s", 1, "clixml", staging);

        Assert.False(File.Exists(staging));
        Assert.Equal(Sha256(content), blob.Sha256);
        Assert.Equal(content, ReadAll(Reopen(store).Blobs, blob.Name));
    }

    [Fact]
    public void Verify_reports_a_corrupt_blob_and_a_missing_one()
    {
        var store = CreateRun("verify");
        var blob = store.Blobs.WriteArtifact("report.html", 1, new MemoryStream(Runs.Bytes("<html>ok</html>")));
        Corrupt(store, blob.Name);
        string missing = blob.Name.Replace("report.html", "never-written.html");

        var problems = store.Blobs.Verify(new[]
        {
            new RecordedFile(blob.Name, blob.Size, blob.Sha256, "s", null),
            new RecordedFile(missing, 3, Sha256(new byte[3]), "s", "k"),
        }, cancellation: TestContext.Current.CancellationToken);

        Assert.Equal(new[] { RunProblemKind.HashMismatch, RunProblemKind.MissingFile }, problems.Select(p => p.Kind));
        Assert.Equal("k", problems[1].Key);
        Assert.False(store.Blobs.Exists(missing));
    }

    [Fact]
    public void A_blob_is_never_overwritten_a_later_write_of_the_same_unit_gets_its_own_name()
    {
        var store = CreateRun("again");
        var first = store.Blobs.WriteStepOutput("s", 1, "json", new MemoryStream(Runs.Bytes("[1]")));
        var second = store.Blobs.WriteStepOutput("s", 2, "json", new MemoryStream(Runs.Bytes("[2]")));
        var artifact = store.Blobs.WriteArtifact("a.txt", 1, new MemoryStream(Runs.Bytes("one")));
        var artifactAgain = store.Blobs.WriteArtifact("a.txt", 2, new MemoryStream(Runs.Bytes("two")));

        Assert.NotEqual(first.Name, second.Name);
        Assert.NotEqual(artifact.Name, artifactAgain.Name);
        Assert.Equal("[1]", Runs.Text(ReadAll(store.Blobs, first.Name)));
        Assert.Equal("[2]", Runs.Text(ReadAll(store.Blobs, second.Name)));
        Assert.Equal("one", Runs.Text(ReadAll(store.Blobs, artifact.Name)));
        Assert.Equal("two", Runs.Text(ReadAll(store.Blobs, artifactAgain.Name)));
    }

    [Fact]
    public void Concurrent_units_copying_artifacts_of_one_name_each_get_their_own_blob()
    {
        var store = CreateRun("parallel");
        var written = new ConcurrentBag<(StoredBlob Blob, string Text)>();
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            string text = $"item {i} " + new string('x', 50_000);
            written.Add((store.Blobs.WriteArtifact("result.csv", 1, new MemoryStream(Runs.Bytes(text))), text));
        });

        Assert.Equal(8, written.Select(w => w.Blob.Name).Distinct().Count());
        foreach (var (blob, text) in written)
        {
            Assert.Equal(text, Runs.Text(ReadAll(store.Blobs, blob.Name)));
        }
    }

    [Theory]
    [InlineData("write")]
    [InlineData("sync")]
    [InlineData("commit")]
    public void A_blob_write_that_fails_leaves_nothing_half_visible(string stage)
    {
        var store = CreateRun("fault-" + stage);
        var control = store.Blobs.WriteArtifact("first.bin", 1, new MemoryStream(RandomBytes(1000, seed: 2)));
        var controlOutput = store.Blobs.WriteStepOutput("first", 1, "clixml", new MemoryStream(RandomBytes(1000, seed: 3)));

        using (FailNextBlobWrite(store, stage))
        {
            var artifactError = Assert.Throws<RunToolsException>(() => store.Blobs.WriteArtifact("second.bin", 1, new MemoryStream(RandomBytes(200_000, seed: 4))));
            Assert.Equal(ErrorIds.WriteFailed, artifactError.ErrorId);
        }

        using (FailNextBlobWrite(store, stage))
        {
            var outputError = Assert.Throws<RunToolsException>(() => store.Blobs.WriteStepOutput("second", 1, "clixml", new MemoryStream(RandomBytes(200_000, seed: 5))));
            Assert.Equal(ErrorIds.WriteFailed, outputError.ErrorId);
        }

        AssertNoPartialBlobs(store);

        // The failed writes claimed no name: the next writes get the names a first write gets.
        var artifact = store.Blobs.WriteArtifact("second.bin", 1, new MemoryStream(Runs.Bytes("artifact")));
        var output = store.Blobs.WriteStepOutput("second", 1, "clixml", new MemoryStream(Runs.Bytes("output")));
        Assert.Equal(control.Name.Replace("first.bin", "second.bin"), artifact.Name);
        Assert.Equal(controlOutput.Name.Replace("first", "second"), output.Name);
        Assert.Equal("artifact", Runs.Text(ReadAll(store.Blobs, artifact.Name)));
        Assert.Equal("output", Runs.Text(ReadAll(store.Blobs, output.Name)));
        Assert.Empty(store.Blobs.Verify(new[] { new RecordedFile(control.Name, control.Size, control.Sha256, null, null) }, cancellation: TestContext.Current.CancellationToken));
    }

    [Fact]
    public void A_stop_request_is_seen_by_the_owner_and_cleared_by_it()
    {
        var store = CreateRun("stop");
        Assert.Null(store.ReadStopRequest());

        RequestStop(Reopen(store), "maintenance window");
        var request = store.ReadStopRequest();
        Assert.Equal("maintenance window", request?.Reason);

        store.ClearStopRequest();
        Assert.Null(Reopen(store).ReadStopRequest());
    }

    private static byte[] ReadAll(IRunBlobs blobs, string name)
    {
        using var stream = blobs.OpenRead(name);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static byte[] RandomBytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexString(SHA256.HashData(bytes)).ToLowerInvariant();

    private sealed class TypesSeen : IJournalVisitor
    {
        public List<string> Types { get; } = new();

        public bool WantsTimestamp => false;

        public void Visit(in ParsedLine line, long offset, ReadOnlySpan<byte> raw) => Types.Add(line.Type);
    }
}
