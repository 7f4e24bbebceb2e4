using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using RunTools.Core.Infrastructure;
using RunTools.Core.State;
using RunTools.Core.Storage;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>The folder store against the store contract, plus what only a folder has: the names docs/run-format.md fixes.</summary>
public sealed class FileRunStoreTests : RunStoreContract, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Blobs_are_named_as_the_run_format_says()
    {
        var store = CreateRun("names");

        Assert.Equal("steps/s/output.clixml", store.Blobs.WriteStepOutput("s", 1, "clixml", new MemoryStream(Runs.Bytes("a"))).Name);
        Assert.Equal("steps/s/attempt-2/output.clixml", store.Blobs.WriteStepOutput("s", 2, "clixml", new MemoryStream(Runs.Bytes("b"))).Name);
        Assert.Equal("steps/t/output.bin", store.Blobs.WriteStepOutput("t", 1, "../x", new MemoryStream(Runs.Bytes("c"))).Name);
        Assert.Equal("artifacts/sub/a.txt", store.Blobs.WriteArtifact("sub/a.txt", 1, new MemoryStream(Runs.Bytes("d"))).Name);
        Assert.Equal("artifacts/attempt-3/sub/a.txt", store.Blobs.WriteArtifact("sub/a.txt", 3, new MemoryStream(Runs.Bytes("e"))).Name);
        Assert.Equal("e", File.ReadAllText(Path.Combine(store.Location, "artifacts", "attempt-3", "sub", "a.txt")));
    }

    [Fact]
    public void A_torn_journal_tail_is_kept_in_logs_and_cut_off_before_appending()
    {
        var store = CreateRun("torn");
        string journal = Path.Combine(store.Location, RunFormat.JournalFile);
        long valid = new FileInfo(journal).Length;
        File.AppendAllText(journal, "{\"seq\":2,\"type\":\"step_sta");

        var scan = store.ScanLog(null);
        using (var log = store.OpenLog(scan, out string? keptTail))
        {
            Assert.StartsWith($"{RunFormat.LogsFolder}/journal-tail-1-", keptTail, StringComparison.Ordinal);
            Assert.Equal("{\"seq\":2,\"type\":\"step_sta", File.ReadAllText(Path.Combine(store.Location, keptTail!)));
        }

        Assert.Equal(valid, new FileInfo(journal).Length);
    }

    [Fact]
    public void A_steps_folder_that_became_a_file_is_RunDamaged_not_a_failed_write()
    {
        var store = CreateRun("damaged");
        string staging = store.Blobs.NewStagingFile("s");
        File.WriteAllText(staging, "output");
        string steps = Path.Combine(store.Location, RunFormat.StepsFolder);
        Directory.Delete(steps, recursive: true);
        File.WriteAllText(steps, "x");

        var error = Assert.Throws<RunToolsException>(() => store.Blobs.TakeStagingFile("s", 1, "clixml", staging));

        Assert.Equal(ErrorIds.RunDamaged, error.ErrorId);
        Assert.Equal(steps, error.Target);
    }

    [Fact]
    public void Leftover_temp_files_of_interrupted_writes_are_removed_and_recorded_files_kept()
    {
        var store = CreateRun("leftovers");
        string staging = store.Blobs.NewStagingFile("s");
        File.WriteAllText(staging, "half an output");
        var kept = store.Blobs.WriteArtifact("a.txt", 1, new MemoryStream(Runs.Bytes("kept")));

        store.RemoveLeftovers();

        Assert.False(File.Exists(staging));
        Assert.Equal("kept", File.ReadAllText(store.Blobs.LocalFile(kept.Name)));
    }

    [Fact]
    public void A_stop_file_written_by_another_process_is_seen_once_the_last_no_stop_answer_is_older_than_the_check_interval()
    {
        var store = CreateRun("stop-elsewhere");
        Assert.Null(store.ReadStopRequest());

        // As Stop-Run in another process writes it: this process's count of stop files it wrote does not move.
        var request = new StopRequest { RequestedBy = "elsewhere", Reason = "other process" };
        File.WriteAllBytes(Path.Combine(store.Location, RunFormat.StopFile), JsonSerializer.SerializeToUtf8Bytes(request, RunFormat.JsonOptions));
        Thread.Sleep(FileRunStore.StopCheckInterval + TimeSpan.FromMilliseconds(5));

        Assert.Equal("other process", store.ReadStopRequest()?.Reason);
    }

    internal override IRunStore CreateRun(string runId) => new FileRunStore(Runs.Create(new RunsRoot(_dir.Path), runId));

    internal override IRunStore Reopen(IRunStore store) => new FileRunStore(RunDirectory.Open(store.Location));

    internal override IDisposable FailNextBlobWrite(IRunStore store, string stage)
    {
        var injector = new FaultInjector(store.Location);
        var op = stage switch
        {
            "write" => DurableOp.Write,
            "sync" => DurableOp.FileSync,
            "commit" => DurableOp.Rename,
            _ => throw new ArgumentOutOfRangeException(nameof(stage)),
        };
        injector.FailNth(1, op);
        return injector;
    }

    internal override void Corrupt(IRunStore store, string name)
    {
        string path = store.Blobs.LocalFile(name);
        byte[] bytes = File.ReadAllBytes(path);
        bytes[0] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
    }

    internal override void RequestStop(IRunStore store, string reason) => RunDirectory.Open(store.Location).RequestStop(reason);

    internal override void AssertNoPartialBlobs(IRunStore store) =>
        Assert.Empty(Directory.EnumerateFiles(store.Location, "*" + DurableFile.TempMarker + "*", SearchOption.AllDirectories).ToList());
}
