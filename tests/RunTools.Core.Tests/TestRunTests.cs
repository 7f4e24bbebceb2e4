using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using RunTools.Core.Engine;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>RunDirectory.Test (Test-Run): each kind of damage is found, named and tied to its unit.</summary>
public sealed class TestRunTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RunsRoot _root;

    public TestRunTests() => _root = new RunsRoot(_dir.Combine("runs"));

    public void Dispose() => _dir.Dispose();

    /// <summary>A completed run: a step with output, a step with 3 items each with an artifact, a run-level artifact.</summary>
    private RunDirectory CompletedRun(string id = "r1", int frames = 3)
    {
        var run = Runs.Create(_root, id, new Dictionary<string, object?> { ["model"] = "m1", ["retries"] = 2 });
        string source = _dir.Combine($"{id}-frame.bin");
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("plan");
        attempt.CompleteStep("plan", Runs.Bytes("<Objs>plan</Objs>"), "clixml");
        attempt.BeginStep("frames");
        for (int i = 0; i < frames; i++)
        {
            string key = $"frame_{i:D4}";
            attempt.BeginItem("frames", key);
            File.WriteAllText(source, "pixels " + i);
            attempt.AddArtifact(source, $"approved/{key}.png");
            attempt.CompleteItem("frames", key, null);
        }

        attempt.CompleteStep("frames", null);
        File.WriteAllText(source, "summary");
        attempt.AddArtifact(source, "summary.txt");
        attempt.Complete();
        return run;
    }

    private static RunTestResult Check(RunDirectory run, Action<long, long>? bytesHashed = null) =>
        run.Test(bytesHashed, TestContext.Current.CancellationToken);

    private static string Artifact(RunDirectory run, string name) => Path.Combine(run.Path, "artifacts", name.Replace('/', Path.DirectorySeparatorChar));

    [Fact]
    public void ARunningRunIsValidWhileItsOwnerAppendsBetweenTheReadsOfTheJournal()
    {
        // The owner appends items and writes snapshots as fast as it can while Test-Run checks the
        // run over and over: events appended after the journal was read for the truth must not be
        // folded into the snapshot it is compared with (that made it StateMismatch, a step ahead).
        var run = Runs.Create(_root, "live");
        using var attempt = run.BeginAttempt(new AttemptOptions { SnapshotInterval = TimeSpan.Zero });
        attempt.BeginStep("work");
        bool stop = false;
        var owner = new System.Threading.Thread(() =>
        {
            for (int i = 0; !System.Threading.Volatile.Read(ref stop); i++)
            {
                attempt.BeginItem("work", $"k{i}");
                attempt.CompleteItem("work", $"k{i}", null);
            }
        });
        owner.Start();
        var mismatches = new List<string>();
        int checks = 0;
        try
        {
            var until = DateTime.UtcNow.AddSeconds(3);
            while (DateTime.UtcNow < until)
            {
                var test = run.Test(cancellation: TestContext.Current.CancellationToken);
                checks++;
                mismatches.AddRange(test.Problems.Where(p => p.Kind == RunProblemKind.StateMismatch).Select(p => $"{p.Path}: {p.Expected} / {p.Actual}"));
            }
        }
        finally
        {
            System.Threading.Volatile.Write(ref stop, true);
            owner.Join();
        }

        Assert.True(checks > 20, $"only {checks} checks ran");
        Assert.True(run.ReadState().ItemsCompleted > 100, "the owner must append while the checks run");
        Assert.Empty(mismatches);
    }

    [Fact]
    public void AnIntactRunIsValidAndEveryRecordedFileIsHashed()
    {
        var run = CompletedRun();
        long hashed = 0;
        var result = Check(run, (done, total) => hashed = Math.Max(hashed, done));
        Assert.True(result.IsValid, string.Join("; ", result.Problems));
        Assert.Empty(result.Problems);
        Assert.Equal(5, result.FilesChecked); // step output, 3 frames, summary
        Assert.Equal(result.BytesChecked, hashed);
        Assert.Equal(RunStatus.Completed, result.State!.Status);
    }

    [Fact]
    public void DamagedArtifactsAreReportedWithTheirUnitAndKind()
    {
        var run = CompletedRun();
        File.WriteAllText(Artifact(run, "approved/frame_0000.png"), "pixelz 0"); // same size
        File.WriteAllText(Artifact(run, "approved/frame_0001.png"), "more pixels 1");
        File.Delete(Artifact(run, "approved/frame_0002.png"));

        var result = Check(run);
        Assert.False(result.IsValid);
        var byKey = result.Problems.ToDictionary(p => p.Key ?? "-");
        Assert.Equal(RunProblemKind.HashMismatch, byKey["frame_0000"].Kind);
        Assert.Equal(RunProblemKind.SizeMismatch, byKey["frame_0001"].Kind);
        Assert.Equal("8 bytes", byKey["frame_0001"].Expected);
        Assert.Equal("13 bytes", byKey["frame_0001"].Actual);
        Assert.Equal(RunProblemKind.MissingFile, byKey["frame_0002"].Kind);
        Assert.All(result.Problems, p => Assert.Equal("frames", p.Step));
        Assert.All(result.Problems, p => Assert.Equal(RunProblemSeverity.Error, p.Severity));
        Assert.Equal("artifacts/approved/frame_0000.png", byKey["frame_0000"].Path);
        Assert.Equal(Integrity.Sha256Hex(Runs.Bytes("pixels 0")), byKey["frame_0000"].Expected);
        Assert.All(result.Problems, p => Assert.StartsWith($"Resume-Run runs item '{p.Key}' of step 'frames' again", p.Note, StringComparison.Ordinal));
    }

    [Fact]
    public void EveryDamagedFileSaysWhatToDoWhetherAStepARunOrNoUnitWroteIt()
    {
        var run = CompletedRun();
        File.WriteAllText(Path.Combine(run.Path, run.ReadState().FindStep("plan")!.Output!.Path), "<Objs>changed</Objs>");
        var summary = run.ReadState().Artifacts.Single(a => a.Step is null);
        File.Delete(Path.Combine(run.Path, summary.Path));

        var problems = Check(run).Problems;
        Assert.StartsWith("Resume-Run runs step 'plan' again", problems.Single(p => p.Step == "plan").Note, StringComparison.Ordinal);
        var runLevel = problems.Single(p => p.Step is null);
        Assert.Equal(RunProblemKind.MissingFile, runLevel.Kind);
        Assert.Contains("no resume redoes it", runLevel.Note, StringComparison.Ordinal);
        Assert.All(problems, p => Assert.False(string.IsNullOrEmpty(p.Note), $"{p.Kind} {p.Path} has no note"));
    }

    [Fact]
    public void ARedoneUnitMakesTheRunValidAgainAndTheKeptDamagedFileIsAWarning()
    {
        var run = CompletedRun();
        File.WriteAllText(Artifact(run, "approved/frame_0001.png"), "pixelz 1");
        Assert.False(Check(run).IsValid);

        string source = _dir.Combine("redo.bin");
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("frames");
            foreach (string key in new[] { "frame_0000", "frame_0001", "frame_0002" })
            {
                if (attempt.BeginItem("frames", key) == ItemAction.Run)
                {
                    File.WriteAllText(source, "pixels 1");
                    attempt.AddArtifact(source, $"approved/{key}.png");
                    attempt.CompleteItem("frames", key, null);
                }
            }

            attempt.CompleteStep("frames", null);
            attempt.Complete();
        }

        var result = Check(run);
        Assert.True(result.IsValid, string.Join("; ", result.Problems));
        var kept = Assert.Single(result.Problems);
        Assert.Equal(RunProblemSeverity.Warning, kept.Severity);
        Assert.Equal("artifacts/approved/frame_0001.png", kept.Path);
        Assert.Contains("attempt 1", kept.Note);
    }

    [Fact]
    public void ADamagedRunLevelArtifactMakesTheRunInvalid()
    {
        var run = CompletedRun();
        File.AppendAllText(Artifact(run, "summary.txt"), "!");
        var problem = Assert.Single(Check(run).Problems);
        Assert.Equal(RunProblemKind.SizeMismatch, problem.Kind);
        Assert.Null(problem.Step);
        Assert.Equal(RunProblemSeverity.Error, problem.Severity);
    }

    [Fact]
    public void AChangedStepOutputIsReported()
    {
        var run = CompletedRun();
        var output = run.ReadState().FindStep("plan")!.Output!;
        File.WriteAllText(run.ResolveRecordedPath(output.Path), "<Objs>PLAN</Objs>");
        var problem = Assert.Single(Check(run).Problems);
        Assert.Equal(RunProblemKind.HashMismatch, problem.Kind);
        Assert.Equal("plan", problem.Step);
        Assert.Null(problem.Key);
    }

    [Fact]
    public void EditedConfigAndScriptCopiesAreReported()
    {
        var run = CompletedRun();
        File.WriteAllText(run.ConfigPath, "{\"model\":\"m2\",\"retries\":2}");
        File.AppendAllText(run.ScriptPath, "\n# edited");
        var problems = Check(run).Problems;
        Assert.Equal(new[] { "config.json", "script.ps1" }, problems.Select(p => p.Path).OrderBy(p => p, StringComparer.Ordinal));
        Assert.All(problems, p => Assert.Equal(RunProblemKind.HashMismatch, p.Kind));
        Assert.Equal(run.ReadState().Config.Hash, problems.Single(p => p.Path == "config.json").Expected);
    }

    [Theory]
    [InlineData("run.json")]
    [InlineData("config.json")]
    [InlineData("script.ps1")]
    [InlineData("journal.jsonl")]
    public void AMissingRequiredFileIsAnError(string file)
    {
        var run = CompletedRun();
        File.Delete(Path.Combine(run.Path, file));
        var result = Check(run);
        Assert.False(result.IsValid);
        var problem = Assert.Single(result.Problems, p => p.Path == file);
        Assert.Equal(RunProblemKind.MissingFile, problem.Kind);
        Assert.NotNull(problem.Note);
    }

    [Fact]
    public void AnUnparsableSnapshotIsCorruptStateAndTheJournalStillVouchesForTheRest()
    {
        var run = CompletedRun();
        File.WriteAllText(run.StatePath, "{ \"format_version\": 1, \"run_id\": ");
        var result = Check(run);
        var problem = Assert.Single(result.Problems);
        Assert.Equal(RunProblemKind.CorruptState, problem.Kind);
        Assert.Equal(5, result.FilesChecked);
        Assert.Equal(RunStatus.Completed, result.State!.Status);
    }

    [Fact]
    public void ASnapshotThatDisagreesWithTheJournalIsAStateMismatch()
    {
        var run = CompletedRun();
        string json = File.ReadAllText(run.StatePath);
        Assert.Contains("\"items_completed\": 3", json);
        File.WriteAllText(run.StatePath, json.Replace("\"status\": \"completed\"", "\"status\": \"failed\"").Replace("\"items_completed\": 3", "\"items_completed\": 4"));

        var problems = Check(run).Problems;
        Assert.All(problems, p => Assert.Equal(RunProblemKind.StateMismatch, p.Kind));
        var status = Assert.Single(problems, p => p.Path == "run.json#/status");
        Assert.Equal("Completed", status.Expected); // the journal's value
        Assert.Equal("Failed", status.Actual);
        Assert.Contains(problems, p => p.Path == "run.json#/items_completed" && p.Expected == "3" && p.Actual == "4");
    }

    [Fact]
    public void AJournalShorterThanTheSnapshotSaysIsTruncation()
    {
        var run = CompletedRun();
        var lines = File.ReadAllLines(run.JournalPath);
        File.WriteAllLines(run.JournalPath, lines.Take(lines.Length - 2));
        var problem = Assert.Single(Check(run).Problems, p => p.Kind == RunProblemKind.JournalTruncated);
        Assert.Equal("journal.jsonl", problem.Path);
        Assert.Contains($"sequence {lines.Length}", problem.Expected);
    }

    [Fact]
    public void ADamagedJournalLineIsCorruptJournal()
    {
        var run = CompletedRun();
        var lines = File.ReadAllLines(run.JournalPath);
        lines[3] = lines[3].Replace("\"seq\":4", "\"seq\":44");
        File.WriteAllLines(run.JournalPath, lines);
        var result = Check(run);
        Assert.False(result.IsValid);
        Assert.Contains(result.Problems, p => p.Kind == RunProblemKind.CorruptJournal && p.Actual.Contains("offset"));
    }

    [Fact]
    public void ATornTailIsOnlyAWarning()
    {
        var run = CompletedRun();
        File.AppendAllText(run.JournalPath, "{\"seq\":999,\"type\":\"item_sta");
        var result = Check(run);
        Assert.True(result.IsValid);
        var problem = Assert.Single(result.Problems);
        Assert.Equal(RunProblemKind.TornJournalTail, problem.Kind);
        Assert.Equal(RunProblemSeverity.Warning, problem.Severity);
    }

    [Fact]
    public void ASnapshotBehindTheJournalIsNoProblem()
    {
        // An interrupted run: the owner died after journal commits but before the next snapshot.
        var run = Runs.Create(_root, "r-int");
        var attempt = run.BeginAttempt();
        attempt.BeginStep("frames");
        for (int i = 0; i < 3; i++)
        {
            attempt.BeginItem("frames", $"k{i}");
            attempt.CompleteItem("frames", $"k{i}", null);
        }

        attempt.Dispose();
        var snapshot = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(run.StatePath)).RootElement;
        Assert.True(snapshot.GetProperty("journal").GetProperty("length").GetInt64() < new FileInfo(run.JournalPath).Length, "the snapshot should lag the journal");
        var result = Check(run);
        Assert.True(result.IsValid, string.Join("; ", result.Problems));
        Assert.Empty(result.Problems);
        Assert.Equal(3, result.State!.ItemsCompleted);
    }

    /// <summary>Appends a joined worker's event as the owner transcribes it (run-format §5.5).</summary>
    private static void Transcribe(RunDirectory run, string type, string key, string worker, long workerSequence)
    {
        string json = $$"""{"step":"work","key":"{{key}}","attempt":1}""";
        using var document = System.Text.Json.JsonDocument.Parse(json);
        var scan = run.ScanJournal();
        using var writer = new RunTools.Core.Journal.JournalWriter(run.JournalPath, scan.ValidLength, scan.LastSequence);
        writer.AppendDurable(RunTools.Core.Journal.RunEvent.Transcribed(type, document.RootElement, worker, workerSequence), DateTimeOffset.UtcNow);
    }

    [Fact]
    public void AWorkerEventTranscribedTwiceIsAWarningAndResumeNeitherReopensNorRedoesItsItem()
    {
        var run = Runs.Create(_root, "r-repeat");
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("work", null, itemsOnly: true);
        }

        const string Worker = "0f8fad5b-d9cb-469f-a165-70867728950e";
        Transcribe(run, "item_started", "k1", Worker, 1);
        Transcribe(run, "item_completed", "k1", Worker, 2);
        Transcribe(run, "item_started", "k2", Worker, 3);
        Transcribe(run, "item_started", "k1", Worker, 1); // the copy a crash before the rows' removal could leave
        long repeatAt = run.ScanJournal().LastSequence;

        var plan = run.Plan(verifyArtifacts: false);
        var ledger = plan.Ledger.Find("work")!;
        Assert.True(ledger.Completed.ContainsKey("k1"));
        Assert.False(ledger.Open.ContainsKey("k1"), "a repeated start reopened a completed item");
        Assert.True(ledger.Open.ContainsKey("k2"));
        Assert.True(plan.Ledger.IsTranscribed(Worker, 3));
        Assert.False(plan.Ledger.IsTranscribed(Worker, 4));

        var result = Check(run);
        Assert.True(result.IsValid, string.Join("; ", result.Problems));
        var repeat = Assert.Single(result.Problems);
        Assert.Equal(RunProblemKind.RepeatedEvent, repeat.Kind);
        Assert.Equal(RunProblemSeverity.Warning, repeat.Severity);
        Assert.Equal("k1", repeat.Key);
        Assert.Contains($"seq {repeatAt}", repeat.Actual, StringComparison.Ordinal);

        // Resumed, k1 is replayed as completed, k2 (the worker's unfinished start) is in doubt.
        using var resumed = run.BeginAttempt(new AttemptOptions { InDoubt = InDoubtAction.Skip });
        resumed.BeginStep("work", null, itemsOnly: true);
        Assert.Equal(ItemAction.Replay, resumed.BeginItem("work", "k1"));
        Assert.Equal(ItemAction.Skip, resumed.BeginItem("work", "k2"));
    }

    [Fact]
    public void AnItemStartedTwiceInOneAttemptIsAWarning()
    {
        var run = Runs.Create(_root, "r-twice");
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("work", null, itemsOnly: true);
            attempt.BeginItem("work", "k1");
        }

        Forge(run, "item_started", "k1");
        var result = Check(run);
        Assert.True(result.IsValid, string.Join("; ", result.Problems));
        var repeat = Assert.Single(result.Problems, p => p.Kind == RunProblemKind.RepeatedEvent);
        Assert.Equal("k1", repeat.Key);
        Assert.Contains("already running in attempt 1", repeat.Actual, StringComparison.Ordinal);
    }

    /// <summary>An item event the engine did not write, appended as if it had.</summary>
    private static void Forge(RunDirectory run, string type, string key)
    {
        var scan = run.ScanJournal();
        using var writer = new RunTools.Core.Journal.JournalWriter(run.JournalPath, scan.ValidLength, scan.LastSequence);
        writer.Append(type, DateTimeOffset.UtcNow, w =>
        {
            w.WriteString("step", "work");
            w.WriteString("key", key);
            w.WriteNumber("attempt", 1);
        });
    }

    [Fact]
    public void ANewerFormatVersionIsReportedAndNothingElseIsGuessed()
    {
        var run = CompletedRun();
        File.WriteAllText(run.StatePath, File.ReadAllText(run.StatePath).Replace("\"format_version\": 1", "\"format_version\": 7"));
        File.WriteAllText(run.JournalPath, string.Empty); // leave run.json as the only source
        var result = Check(run);
        var problem = Assert.Single(result.Problems);
        Assert.Equal(RunProblemKind.UnsupportedFormatVersion, problem.Kind);
        Assert.Contains("version 7", problem.Note);
        Assert.Null(result.State);
        Assert.False(result.IsValid);
    }

    [Fact]
    public void ThousandsOfArtifactsAreAllVerified()
    {
        var run = CompletedRun("big", frames: 3000);
        File.WriteAllText(Artifact(run, "approved/frame_2345.png"), "pixels 9999");
        int calls = 0;
        var result = Check(run, (_, _) => System.Threading.Interlocked.Increment(ref calls));
        Assert.Equal(3002, result.FilesChecked);
        Assert.Equal(3002, calls);
        var problem = Assert.Single(result.Problems);
        Assert.Equal("frame_2345", problem.Key);
    }
}
