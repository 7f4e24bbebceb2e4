using System;
using System.IO;
using System.Text;
using RunTools.Core.Engine;
using Xunit;

namespace RunTools.Core.Tests;

public sealed class SnapshotTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private RunDirectory CompletedRunWithItems(int items)
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("s");
        for (int i = 0; i < items; i++)
        {
            attempt.BeginItem("s", "k" + i);
            attempt.CompleteItem("s", "k" + i, null);
        }

        attempt.CompleteStep("s", Runs.Bytes("out"));
        attempt.Complete();
        return run;
    }

    [Fact]
    public void AMissingSnapshotIsRebuiltFromTheJournal()
    {
        var run = CompletedRunWithItems(5);
        string before = File.ReadAllText(run.StatePath);
        File.Delete(run.StatePath);
        var state = run.ReadState();
        Assert.Equal(RunStatus.Completed, state.Status);
        Assert.Equal(5, state.ItemsCompleted);
        Assert.Equal("steps/s/output.bin", state.FindStep("s")!.Output!.Path);
        Assert.Contains("\"items_completed\": 5", before, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{\"format_version\":1,\"run_id\":")]
    [InlineData("not json at all")]
    public void ACorruptSnapshotIsRebuiltFromTheJournal(string content)
    {
        var run = CompletedRunWithItems(3);
        File.WriteAllText(run.StatePath, content);
        var state = run.ReadState();
        Assert.Equal(RunStatus.Completed, state.Status);
        Assert.Equal(3, state.ItemsCompleted);
    }

    [Fact]
    public void AnUnreadableSnapshotIsRebuiltFromTheJournal()
    {
        // A directory where run.json should be: opening it fails even for root.
        var run = CompletedRunWithItems(2);
        File.Delete(run.StatePath);
        Directory.CreateDirectory(run.StatePath);
        Assert.Equal(2, run.ReadState().ItemsCompleted);
    }

    [Fact]
    public void TheSnapshotAndARebuildAgree()
    {
        var run = CompletedRunWithItems(20);
        string snapshot = File.ReadAllText(run.StatePath);
        var rebuilt = run.Rebuild();
        string rebuiltJson = Encoding.UTF8.GetString(System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(rebuilt, RunFormat.JsonOptions));
        Assert.Equal(Normalize(snapshot), Normalize(rebuiltJson));

        // updated_at is the time the owner wrote the snapshot, which a rebuild cannot know exactly.
        static string Normalize(string json) => System.Text.RegularExpressions.Regex.Replace(json, "\"updated_at\": \"[^\"]+\"", "\"updated_at\": \"-\"");
    }

    [Fact]
    public void ReadersApplyTheJournalTailAfterTheSnapshot()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using var attempt = run.BeginAttempt(new AttemptOptions { SnapshotInterval = TimeSpan.FromHours(1) });
        attempt.BeginStep("s");
        for (int i = 0; i < 4; i++)
        {
            attempt.BeginItem("s", "k" + i);
            attempt.CompleteItem("s", "k" + i, null);
        }

        // The snapshot on disk still says 0 items; readers see all 4 through the tail.
        Assert.Contains("\"items_completed\": 0", File.ReadAllText(run.StatePath), StringComparison.Ordinal);
        var state = run.ReadState();
        Assert.Equal(4, state.ItemsCompleted);
        Assert.Equal("s", state.CurrentStep);
        Assert.Equal(RunStatus.Running, state.Status);
    }

    [Fact]
    public void ASnapshotAheadOfATruncatedJournalIsNotTrusted()
    {
        var run = CompletedRunWithItems(4);
        var events = new System.Collections.Generic.List<Journal.JournalEvent>(run.ReadEvents());
        var firstCompletion = events.Find(e => e.Type == "item_completed")!;
        using (var stream = new FileStream(run.JournalPath, FileMode.Open))
        {
            stream.SetLength(firstCompletion.Offset + Encoding.UTF8.GetByteCount(firstCompletion.RawLine) + 1);
        }

        var state = run.ReadState();
        Assert.Equal(1, state.ItemsCompleted);
        Assert.Equal(RunStatus.Interrupted, state.Status);
    }

    [Fact]
    public void ANewerFormatVersionIsRefusedWithAClearError()
    {
        var run = CompletedRunWithItems(1);
        File.WriteAllText(run.StatePath, File.ReadAllText(run.StatePath).Replace("\"format_version\": 1", "\"format_version\": 2", StringComparison.Ordinal));
        var ex = Assert.Throws<RunToolsException>(() => run.ReadState());
        Assert.Equal(ErrorIds.UnsupportedFormatVersion, ex.ErrorId);
        Assert.Contains("Update RunTools", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NeitherSnapshotNorJournalGivesRunDamaged()
    {
        var run = CompletedRunWithItems(1);
        File.WriteAllText(run.StatePath, "garbage");
        File.WriteAllText(run.JournalPath, "garbage\n");
        var ex = Assert.Throws<RunToolsException>(() => run.ReadState());
        Assert.Equal(ErrorIds.RunDamaged, ex.ErrorId);
    }

    [Fact]
    public void ALostJournalWithASnapshotRefusesToResume()
    {
        var run = CompletedRunWithItems(1);
        var statusOfRun = new System.Text.RegularExpressions.Regex("\"status\": \"completed\"");
        File.WriteAllText(run.StatePath, statusOfRun.Replace(File.ReadAllText(run.StatePath), "\"status\": \"stopped\"", 1));
        File.Delete(run.JournalPath);
        Assert.Equal(RunStatus.Stopped, run.ReadState().Status); // readers still have the snapshot
        var ex = Assert.Throws<RunToolsException>(() => run.BeginAttempt());
        Assert.Equal(ErrorIds.JournalUnreadable, ex.ErrorId);
        Assert.False(File.Exists(run.JournalPath));
    }
}
