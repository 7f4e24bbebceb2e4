using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using Xunit;

namespace RunTools.Core.Tests;

public sealed class EngineTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RunsRoot _root;

    public EngineTests() => _root = new RunsRoot(_dir.Combine("runs"));

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ACompletedStepIsSkippedOnResumeAndItsOutputReplayed()
    {
        var run = Runs.Create(_root);
        using (var first = run.BeginAttempt())
        {
            Assert.Equal(StepAction.Run, first.BeginStep("extract"));
            first.CompleteStep("extract", Runs.Bytes("<Objs/>"), "clixml");
            Assert.Equal(StepAction.Run, first.BeginStep("load"));
            first.FailStep("load", "database offline");
            first.Fail("database offline");
        }

        Assert.Equal(RunStatus.Failed, run.ReadState().Status);
        Assert.Equal("database offline", run.ReadState().Error);
        using var second = run.BeginAttempt();
        Assert.Equal(2, second.Attempt);
        Assert.Equal("load", second.Plan.FirstUnfinishedStep);
        Assert.Equal(StepAction.Replay, second.BeginStep("extract"));
        Assert.Equal("<Objs/>", Runs.Text(second.ReadStepOutput("extract")));
        Assert.Equal("clixml", second.StepOutputFormat("extract"));
        Assert.Equal(StepAction.Run, second.BeginStep("load"));
        second.CompleteStep("load", null);
        var final = second.Complete();
        Assert.Equal(RunStatus.Completed, final.Status);
        Assert.Equal(2, final.StepsCompleted);
        Assert.True(File.Exists(Path.Combine(run.Path, "logs", "attempt-1.log")));
        Assert.Contains("resumed", File.ReadAllText(Path.Combine(run.Path, "logs", "attempt-2.log")), StringComparison.Ordinal);
        var history = Assert.Single(final.ResumeHistory);
        Assert.Equal(RunStatus.Failed, history.PreviousStatus);
    }

    [Fact]
    public void EachItemKeyIsDoneOncePerRunAndItsOutputReplayed()
    {
        var run = Runs.Create(_root);
        using (var first = run.BeginAttempt())
        {
            first.BeginStep("upload");
            foreach (string key in new[] { "a", "b" })
            {
                Assert.Equal(ItemAction.Run, first.BeginItem("upload", key));
                first.CompleteItem("upload", key, Runs.Bytes("sent " + key));
            }

            Assert.Equal(ItemAction.Replay, first.BeginItem("upload", "a")); // a duplicate key in the same pipeline
            first.Stop(new StopRequest { RequestedBy = "test" });
        }

        using var second = run.BeginAttempt();
        Assert.Equal(2, second.Plan.CompletedItems);
        Assert.True(second.Plan.IsItemCompleted("upload", "b"));
        second.BeginStep("upload");
        Assert.Equal(ItemAction.Replay, second.BeginItem("upload", "b"));
        Assert.Equal("sent b", Runs.Text(second.ReadItemOutput("upload", "b")));
        Assert.Equal(ItemAction.Run, second.BeginItem("upload", "c"));
        second.CompleteItem("upload", "c", null);
        Assert.Null(second.ReadItemOutput("upload", "c"));
        second.CompleteStep("upload", null);
        var state = second.Complete();
        Assert.Equal(3, state.ItemsCompleted);
        Assert.Equal(3, run.ReadEvents().Count(e => e.Type == JournalEventTypes.ItemCompleted));
    }

    private RunDirectory RunWithItemInDoubt()
    {
        var run = Runs.Create(_root);
        var attempt = run.BeginAttempt();
        attempt.BeginStep("send");
        attempt.BeginItem("send", "order-1");
        attempt.CompleteItem("send", "order-1", null);
        attempt.BeginItem("send", "order-2");

        // The process dies here: no completion, no finish. Disposing releases the lock like the OS would.
        attempt.Dispose();
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        return run;
    }

    [Fact]
    public void AnItemInDoubtIsRetriedByDefaultAndReported()
    {
        var run = RunWithItemInDoubt();
        var observer = new RecordingObserver();
        using var attempt = run.BeginAttempt(new AttemptOptions { Observer = observer });
        var inDoubt = Assert.Single(attempt.Plan.InDoubt);
        Assert.Equal("send/order-2", inDoubt.ToString());
        Assert.Contains(observer.Warnings, w => w.Contains("'order-2'", StringComparison.Ordinal) && w.Contains("in doubt", StringComparison.Ordinal));
        attempt.BeginStep("send");
        Assert.Equal(ItemAction.Replay, attempt.BeginItem("send", "order-1"));
        Assert.Equal(ItemAction.Run, attempt.BeginItem("send", "order-2"));
        attempt.CompleteItem("send", "order-2", null);
        attempt.CompleteStep("send", null);
        attempt.Complete();
        var resolved = Assert.Single(run.ReadEvents(), e => e.Type == JournalEventTypes.ItemResolved);
        Assert.Equal("retry", resolved.Data["resolution"]!.GetValue<string>());
        Assert.Equal("in_doubt", run.ReadEvents().Last(e => e.Type == JournalEventTypes.ItemStarted).Data["previous"]!.GetValue<string>());
        Assert.Equal(2, run.ReadState().ItemsCompleted);
        Assert.Empty(run.ReadState().FindStep("send")!.ItemsOpen);
    }

    [Fact]
    public void AnItemInDoubtCanBeSkippedAndStaysSkipped()
    {
        var run = RunWithItemInDoubt();
        using (var attempt = run.BeginAttempt(new AttemptOptions { InDoubt = InDoubtAction.Skip }))
        {
            attempt.BeginStep("send");
            Assert.Equal(ItemAction.Skip, attempt.BeginItem("send", "order-2"));
            attempt.Stop(new StopRequest { RequestedBy = "test" });
        }

        Assert.Equal(1, run.ReadState().FindStep("send")!.ItemsSkipped);
        using var again = run.BeginAttempt();
        Assert.Empty(again.Plan.InDoubt);
        again.BeginStep("send");
        Assert.Equal(ItemAction.Skip, again.BeginItem("send", "order-2"));
    }

    [Fact]
    public void TheFailPolicyRefusesToResumeAndNamesTheItems()
    {
        var run = RunWithItemInDoubt();
        var ex = Assert.Throws<InDoubtItemsException>(() => run.BeginAttempt(new AttemptOptions { InDoubt = InDoubtAction.Fail }));
        Assert.Equal(ErrorIds.InDoubtItems, ex.ErrorId);
        Assert.Contains("send/order-2", ex.Message, StringComparison.Ordinal);
        Assert.Contains("-InDoubt Retry", ex.Message, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        Assert.False(run.IsOwned);
    }

    [Fact]
    public void ADeciderChoosesPerItem()
    {
        var run = RunWithItemInDoubt();
        var asked = new List<string>();
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("send");
        var action = attempt.BeginItem("send", "order-2", item =>
        {
            asked.Add(item.Key);
            return InDoubtAction.Skip; // "the broker says order-2 was filled"
        });
        Assert.Equal(ItemAction.Skip, action);
        Assert.Equal(new[] { "order-2" }, asked);
        Assert.Equal(ItemAction.Run, attempt.BeginItem("send", "order-3", _ => throw new InvalidOperationException("not asked for keys that are not in doubt")));
    }

    [Fact]
    public void FailedItemsFailTheStepAndAreRetriedOnResume()
    {
        var run = Runs.Create(_root);
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("s");
            attempt.BeginItem("s", "good");
            attempt.CompleteItem("s", "good", null);
            attempt.BeginItem("s", "bad");
            attempt.FailItem("s", "bad", "timeout");
            var ex = Assert.Throws<RunToolsException>(() => attempt.CompleteStep("s", null));
            Assert.Equal(ErrorIds.ItemsFailed, ex.ErrorId);
            Assert.Equal(RunStatus.Failed, attempt.Complete().Status);
        }

        var state = run.ReadState();
        Assert.Equal(1, state.FindStep("s")!.ItemsFailed);
        Assert.Equal(StepStatus.Failed, state.FindStep("s")!.Status);
        using var retry = run.BeginAttempt();
        retry.BeginStep("s");
        Assert.Equal(ItemAction.Run, retry.BeginItem("s", "bad"));
        retry.CompleteItem("s", "bad", null);
        retry.CompleteStep("s", null);
        Assert.Equal(RunStatus.Completed, retry.Complete().Status);
        Assert.Equal(0, run.ReadState().FindStep("s")!.ItemsFailed);
        Assert.Equal(2, run.ReadState().ItemsCompleted);
    }

    [Fact]
    public void AStopRequestEndsTheAttemptAtTheNextBoundary()
    {
        var run = Runs.Create(_root);
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("s");
        attempt.BeginItem("s", "1");
        run.RequestStop("deploy window", "ops@host");
        Assert.Equal(RunStatus.Stopping, run.ReadState().Status);
        attempt.CompleteItem("s", "1", null); // the unit in flight finishes
        var ex = Assert.Throws<RunStoppedException>(() => attempt.BeginItem("s", "2"));
        Assert.Equal(ErrorIds.StopRequested, ex.ErrorId);
        var state = attempt.Stop(ex.Request);
        Assert.Equal(RunStatus.Stopped, state.Status);
        Assert.Equal("deploy window", state.Stop!.Reason);
        Assert.Equal("ops@host", state.Stop.RequestedBy);
        Assert.False(File.Exists(run.StopPath));
        Assert.Equal(StepStatus.Pending, state.FindStep("s")!.Status);
        Assert.Equal(RunStatus.Stopped, run.ReadState().Status);
        Assert.Equal(1, run.ReadState().ItemsCompleted);
    }

    [Fact]
    public void CtrlCIsHonouredLikeAStopAndLeavesTheInterruptedItemInDoubt()
    {
        var run = Runs.Create(_root);
        using var cancel = new CancellationTokenSource();
        using (var attempt = run.BeginAttempt(new AttemptOptions { Cancellation = cancel.Token }))
        {
            attempt.BeginStep("s");
            attempt.BeginItem("s", "1");
            cancel.Cancel();
            var ex = Assert.Throws<RunStoppedException>(() => attempt.ThrowIfStopRequested());
            Assert.Equal("Ctrl+C", ex.Request.RequestedBy);
            attempt.Stop(ex.Request);
        }

        using var next = run.BeginAttempt();
        Assert.Equal("s/1", Assert.Single(next.Plan.InDoubt).ToString());
    }

    [Fact]
    public void AStaleStopFileIsClearedByTheNextAttempt()
    {
        var run = Runs.Create(_root);
        run.RequestStop("old");
        var observer = new RecordingObserver();
        using var attempt = run.BeginAttempt(new AttemptOptions { Observer = observer });
        Assert.False(File.Exists(run.StopPath));
        Assert.Contains(run.ReadEvents(), e => e.Type == JournalEventTypes.StopCleared);
        Assert.Contains(observer.Warnings, w => w.Contains("left over from an earlier attempt and was cleared", StringComparison.Ordinal));
        Assert.Equal(StepAction.Run, attempt.BeginStep("s"));
    }

    [Fact]
    public void StepGatesRunOnlyWhatTheyName()
    {
        var run = Runs.Create(_root);
        using (var only = run.BeginAttempt(new AttemptOptions { Gate = new StepGate { Only = new List<string> { "b" } } }))
        {
            Assert.Equal(StepAction.GatedOut, only.BeginStep("a"));
            Assert.Equal(StepAction.Run, only.BeginStep("b"));
            only.CompleteStep("b", null);
            Assert.Equal(StepAction.GatedOut, only.BeginStep("c"));
            var state = only.Complete();
            Assert.Equal(RunStatus.Stopped, state.Status);
            Assert.Contains("steps not run: a, c", state.Stop!.Reason, StringComparison.Ordinal);
        }

        using (var range = run.BeginAttempt(new AttemptOptions { Gate = new StepGate { From = "a", To = "c" } }))
        {
            Assert.Equal(StepAction.Run, range.BeginStep("a"));
            range.CompleteStep("a", null);
            Assert.Equal(StepAction.Replay, range.BeginStep("b"));
            Assert.Equal(StepAction.Run, range.BeginStep("c"));
            range.CompleteStep("c", null);
            Assert.Equal(StepAction.GatedOut, range.BeginStep("d"));
            Assert.Equal(RunStatus.Stopped, range.Complete().Status);
        }

        using var from = run.BeginAttempt(new AttemptOptions { Gate = new StepGate { From = "d" } });
        Assert.Equal(StepAction.Replay, from.BeginStep("a"));
        Assert.Equal(StepAction.Run, from.BeginStep("d"));
        from.CompleteStep("d", null);
        Assert.Equal(RunStatus.Completed, from.Complete().Status);
        var gate = run.ReadState().ResumeHistory.Last().Gate!;
        Assert.Equal("d", gate.From);
    }

    [Fact]
    public void BadStepNamesAndKeysAreRejected()
    {
        var run = Runs.Create(_root);
        using var attempt = run.BeginAttempt();
        Assert.Equal(ErrorIds.InvalidStepName, Assert.Throws<RunToolsException>(() => attempt.BeginStep("../x")).ErrorId);
        attempt.BeginStep("s");
        Assert.Equal(ErrorIds.StepNested, Assert.Throws<RunToolsException>(() => attempt.BeginStep("t")).ErrorId);
        Assert.Equal(ErrorIds.InvalidItemKey, Assert.Throws<RunToolsException>(() => attempt.BeginItem("s", string.Empty)).ErrorId);
        Assert.Equal(ErrorIds.StepNotRunning, Assert.Throws<RunToolsException>(() => attempt.BeginItem("other", "k")).ErrorId);
        Assert.Equal(ErrorIds.InvalidStepName, Assert.Throws<RunToolsException>(() => run.BeginAttempt(new AttemptOptions { Gate = new StepGate { From = "a/b" } })).ErrorId);
    }

    [Fact]
    public void ArtifactsAreCopiedOrReferencedWithSizeAndHash()
    {
        var run = Runs.Create(_root);
        string report = _dir.Combine("report.html");
        File.WriteAllText(report, "<h1>ok</h1>");
        string big = _dir.Combine("big.bin");
        File.WriteAllBytes(big, new byte[100_000]);
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("report");
        var copied = attempt.AddArtifact(report, "reports/daily.html");
        var referenced = attempt.AddArtifact(big, mode: ArtifactMode.Reference);
        attempt.CompleteStep("report", null);
        attempt.Complete();

        Assert.Equal("artifacts/reports/daily.html", copied.Path);
        Assert.Equal("<h1>ok</h1>", File.ReadAllText(Path.Combine(run.Path, "artifacts", "reports", "daily.html")));
        Assert.Equal(11, copied.Size);
        Assert.Equal(Integrity.Sha256Hex(Runs.Bytes("<h1>ok</h1>")), copied.Sha256);
        Assert.Equal("report", copied.Step);
        Assert.Equal(Path.GetFullPath(big), referenced.Path);
        Assert.Equal(100_000, referenced.Size);
        Assert.Equal(2, run.ReadState().Artifacts.Count);
        Assert.Equal(ErrorIds.ArtifactNotFound, Assert.Throws<RunToolsException>(() => Runs.Create(_root, "r2").BeginAttempt().AddArtifact(_dir.Combine("nope"))).ErrorId);
    }

    [Fact]
    public void ACorruptArtifactMakesItsItemRunAgainAndTheOldFileIsKept()
    {
        // Seed 004: a corrupted approved frame is regenerated.
        var run = Runs.Create(_root);
        string frame = _dir.Combine("frame.png");
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("frames");
            for (int i = 0; i < 3; i++)
            {
                string key = $"frame_{i:D4}";
                attempt.BeginItem("frames", key);
                File.WriteAllText(frame, "pixels " + i);
                attempt.AddArtifact(frame, $"approved/{key}.png");
                attempt.CompleteItem("frames", key, null);
            }

            attempt.CompleteStep("frames", null);
            attempt.Complete();
        }

        string damaged = Path.Combine(run.Path, "artifacts", "approved", "frame_0001.png");
        File.WriteAllText(damaged, "pixelz 1"); // same size, different bytes
        Assert.Equal(RunProblemKind.HashMismatch, Assert.Single(run.Plan().IntegrityProblems).Kind);
        using (var attempt = run.BeginAttempt(new AttemptOptions { Observer = new RecordingObserver() }))
        {
            // Even a completed run is resumed to redo a damaged unit, and only that unit.
            Assert.Equal(RunStatus.Completed, attempt.PreviousStatus);
            var problem = Assert.Single(attempt.Plan.IntegrityProblems);
            Assert.Equal("frame_0001", problem.Key);
            Assert.Equal(StepAction.Run, attempt.BeginStep("frames"));
            Assert.Equal(ItemAction.Replay, attempt.BeginItem("frames", "frame_0000"));
            Assert.Equal(ItemAction.Run, attempt.BeginItem("frames", "frame_0001"));
            File.WriteAllText(frame, "pixels 1");
            attempt.AddArtifact(frame, "approved/frame_0001.png");
            attempt.CompleteItem("frames", "frame_0001", null);
            Assert.Equal(ItemAction.Replay, attempt.BeginItem("frames", "frame_0002"));
            attempt.CompleteStep("frames", null);
            Assert.Equal(RunStatus.Completed, attempt.Complete().Status);
        }

        Assert.Equal("pixelz 1", File.ReadAllText(damaged)); // kept, never overwritten
        Assert.Equal(3, run.ReadState().ItemsCompleted);
        Assert.Empty(run.Plan().IntegrityProblems);
        Assert.Equal(ErrorIds.RunNotResumable, Assert.Throws<RunToolsException>(() => run.BeginAttempt()).ErrorId);

        // The same damage in an interrupted run: missing and corrupt frames are made again.
        var run2 = Runs.Create(_root, "r2");
        using (var attempt = run2.BeginAttempt())
        {
            attempt.BeginStep("frames");
            foreach (string key in new[] { "frame_0000", "frame_0001" })
            {
                attempt.BeginItem("frames", key);
                File.WriteAllText(frame, "pixels " + key);
                attempt.AddArtifact(frame, $"approved/{key}.png");
                attempt.CompleteItem("frames", key, null);
            }
        }

        File.Delete(Path.Combine(run2.Path, "artifacts", "approved", "frame_0000.png"));
        File.WriteAllText(Path.Combine(run2.Path, "artifacts", "approved", "frame_0001.png"), "corrupt!");
        using (var attempt = run2.BeginAttempt())
        {
            Assert.Equal(2, attempt.Plan.IntegrityProblems.Count);
            attempt.BeginStep("frames");
            Assert.Equal(ItemAction.Run, attempt.BeginItem("frames", "frame_0000"));
            File.WriteAllText(frame, "regenerated 0");
            var redone = attempt.AddArtifact(frame, "approved/frame_0000.png");
            attempt.CompleteItem("frames", "frame_0000", null);
            Assert.Equal("artifacts/approved/frame_0000.png", redone.Path); // the old one was missing
            Assert.Equal(ItemAction.Run, attempt.BeginItem("frames", "frame_0001"));
            var second = attempt.AddArtifact(frame, "approved/frame_0001.png");
            Assert.Equal("artifacts/attempt-2/approved/frame_0001.png", second.Path);
            attempt.CompleteItem("frames", "frame_0001", null);
        }

        Assert.Equal("corrupt!", File.ReadAllText(Path.Combine(run2.Path, "artifacts", "approved", "frame_0001.png")));
        Assert.Equal(2, run2.ReadEvents().Count(e => e.Type == JournalEventTypes.ItemInvalidated));
        Assert.Equal(2, run2.ReadState().ItemsCompleted);
        Assert.Empty(run2.Plan().IntegrityProblems);
    }

    [Fact]
    public void ACorruptStepOutputMakesTheStepRunAgain()
    {
        var run = Runs.Create(_root);
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("a");
            attempt.CompleteStep("a", Runs.Bytes("value"));
            attempt.Stop(new StopRequest { RequestedBy = "t" });
        }

        File.WriteAllText(Path.Combine(run.Path, "steps", "a", "output.bin"), "VALUE");
        using var again = run.BeginAttempt();
        Assert.Equal(StepAction.Run, again.BeginStep("a"));
        Assert.Contains(run.ReadEvents(), e => e.Type == JournalEventTypes.StepInvalidated && e.Step == "a");
        again.CompleteStep("a", Runs.Bytes("value again"));
        Assert.Equal("steps/a/attempt-2/output.bin", again.State.FindStep("a")!.Output!.Path);
        Assert.Equal("value again", Runs.Text(again.ReadStepOutput("a")));
        Assert.Equal("VALUE", File.ReadAllText(Path.Combine(run.Path, "steps", "a", "output.bin"))); // kept
    }

    [Theory]
    [InlineData("directory")]
    [InlineData("link")]
    [InlineData("attempt folder taken")]
    public void AStepOutputReplacedByAFolderOrALinkMakesTheStepRunAgainIntoAFreePlace(string damage)
    {
        var run = Runs.Create(_root);
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("a");
            attempt.CompleteStep("a", Runs.Bytes("value"));
            attempt.Stop(new StopRequest { RequestedBy = "t" });
        }

        string output = Path.Combine(run.Path, "steps", "a", "output.bin");
        File.Delete(output);
        if (damage == "link")
        {
            File.CreateSymbolicLink(output, "/nonexistent/target");
        }
        else
        {
            Directory.CreateDirectory(output);
        }

        if (damage == "attempt folder taken")
        {
            File.WriteAllText(Path.Combine(run.Path, "steps", "a", "attempt-2"), "a file where the attempt's folder would go");
        }

        using var again = run.BeginAttempt();
        Assert.Equal(StepAction.Run, again.BeginStep("a"));
        again.CompleteStep("a", Runs.Bytes("value again"));
        string expected = damage == "attempt folder taken" ? "steps/a/attempt-2-2/output.bin" : "steps/a/attempt-2/output.bin";
        Assert.Equal(expected, again.State.FindStep("a")!.Output!.Path);
        Assert.Equal("value again", Runs.Text(again.ReadStepOutput("a")));
        Assert.Equal(damage == "link" ? FileKind.SymbolicLink : FileKind.Directory, NativeFileType.Of(output, followLinks: false)); // kept as it was
    }

    [Fact]
    public void ConfigDriftIsRefusedWithTheChangedKeysThenAcceptedWithForce()
    {
        string configPath = _dir.Combine("run.yaml");
        File.WriteAllText(configPath, "generator:\n  model: v1\nauditor:\n  threshold: 0.5\n");
        var run = _root.CreateRun(new RunCreateOptions { Name = "drift", RunId = "d1", Config = EffectiveConfig.FromFile(configPath), Script = Runs.Bytes("s") });
        Assert.Equal(File.ReadAllText(configPath), File.ReadAllText(Path.Combine(run.Path, "config.source.yaml")));
        Assert.Equal("{\"auditor\":{\"threshold\":0.5},\"generator\":{\"model\":\"v1\"}}", File.ReadAllText(run.ConfigPath));
        using (var a = run.BeginAttempt())
        {
            a.Stop(new StopRequest { RequestedBy = "t" });
        }

        File.WriteAllText(configPath, "generator:\n  model: v2\nauditor:\n  threshold: 0.5\n  retries: 3\n");
        var changed = EffectiveConfig.FromFile(configPath);
        var ex = Assert.Throws<DriftException>(() => run.BeginAttempt(new AttemptOptions { Config = changed }));
        Assert.Equal(ErrorIds.ConfigDrift, ex.ErrorId);
        Assert.Contains("Changed: generator.model; Added: auditor.retries", ex.Message, StringComparison.Ordinal);
        Assert.Contains("-Force", ex.Message, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Stopped, run.ReadState().Status);
        Assert.Contains(run.ReadEvents(), e => e.Type == JournalEventTypes.ResumeRefused);

        using (var forced = run.BeginAttempt(new AttemptOptions { Config = changed, Force = true }))
        {
            forced.Complete();
        }

        var state = run.ReadState();
        Assert.Equal(changed.Hash, state.Config.Hash);
        var drift = Assert.Single(state.ResumeHistory.Last().Drift);
        Assert.Equal("config", drift.Kind);
        Assert.Contains(drift.Changes, c => c.Path == "generator.model" && c.OldValue == "\"v1\"" && c.NewValue == "\"v2\"");
        Assert.Equal(changed.CanonicalJson, File.ReadAllText(run.ConfigPath));
        Assert.Contains("model: v1", File.ReadAllText(Path.Combine(run.Path, "history", "attempt-1", "config.source.yaml")), StringComparison.Ordinal);
        Assert.Contains("v1", File.ReadAllText(Path.Combine(run.Path, "history", "attempt-1", "config.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void ScriptDriftIsRefusedThenAcceptedWithForce()
    {
        var run = Runs.Create(_root, script: "Invoke-RunStep a {}");
        var ex = Assert.Throws<DriftException>(() => run.BeginAttempt(new AttemptOptions { Script = Runs.Bytes("Invoke-RunStep a { 'new' }") }));
        Assert.Equal(ErrorIds.ScriptDrift, ex.ErrorId);
        Assert.True(ex.ScriptChanged);
        using (run.BeginAttempt(new AttemptOptions { Script = Runs.Bytes("Invoke-RunStep a {}") }))
        {
            // The same bytes: no drift.
        }

        using (run.BeginAttempt(new AttemptOptions { Script = Runs.Bytes("Invoke-RunStep a { 'new' }"), Force = true }))
        {
        }

        Assert.Equal("Invoke-RunStep a { 'new' }", File.ReadAllText(run.ScriptPath));
        Assert.Equal("Invoke-RunStep a {}", File.ReadAllText(Path.Combine(run.Path, "history", "attempt-1", "script.ps1")));
        Assert.Equal(Integrity.Sha256Hex(Runs.Bytes("Invoke-RunStep a { 'new' }")), run.ReadState().Script.Hash);
    }

    [Fact]
    public void ACompletedRunIsNotResumed()
    {
        var run = Runs.Create(_root);
        using (var a = run.BeginAttempt())
        {
            a.Complete();
        }

        var ex = Assert.Throws<RunToolsException>(() => run.BeginAttempt());
        Assert.Equal(ErrorIds.RunNotResumable, ex.ErrorId);
        Assert.Contains("already completed", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFinishedAttemptRefusesMoreWork()
    {
        var run = Runs.Create(_root);
        using var a = run.BeginAttempt();
        a.Complete();
        Assert.Equal(ErrorIds.NotOwner, Assert.Throws<RunToolsException>(() => a.BeginStep("late")).ErrorId);
    }

    [Fact]
    public void CreatingRunsValidatesAndNeverLeavesHalfARun()
    {
        Assert.Equal(ErrorIds.InvalidRunName, Assert.Throws<RunToolsException>(() => _root.CreateRun(new RunCreateOptions { Name = " " })).ErrorId);
        Assert.Equal(ErrorIds.InvalidRunId, Assert.Throws<RunToolsException>(() => _root.CreateRun(new RunCreateOptions { Name = "n", RunId = "../escape" })).ErrorId);
        Runs.Create(_root, "same");
        Assert.Equal(ErrorIds.RunExists, Assert.Throws<RunToolsException>(() => Runs.Create(_root, "same")).ErrorId);
        var generated = _root.CreateRun(new RunCreateOptions { Name = "Nightly ETL" });
        Assert.Matches("^[0-9]{8}-[0-9]{6}-nightly-etl-[0-9a-z]{4}$", generated.RunId);
        Assert.Equal(new[] { generated.RunId, "same" }.OrderBy(x => x, StringComparer.Ordinal), _root.EnumerateRunIds());
        Assert.Empty(Directory.GetDirectories(_root.Path, ".staging-*"));
        Assert.False(Directory.Exists(_dir.Combine("escape")));
        Assert.Equal(ErrorIds.RunNotFound, Assert.Throws<RunToolsException>(() => _root.OpenRun("missing")).ErrorId);
    }

    [Fact]
    public void ListingReportsEveryRunAndUnreadableOnesWithTheirError()
    {
        Runs.Create(_root, "a");
        var b = Runs.Create(_root, "b");
        File.WriteAllText(b.StatePath, "x");
        File.WriteAllText(b.JournalPath, "y\n");
        Directory.CreateDirectory(Path.Combine(_root.Path, "not-a-run"));
        var listings = _root.ListRuns();
        Assert.Equal(new[] { "a", "b" }, listings.Select(l => l.Run.RunId));
        Assert.Equal(RunStatus.Created, listings[0].State!.Status);
        Assert.Equal(ErrorIds.RunDamaged, listings[1].Error!.ErrorId);
    }

    [Fact]
    public void StreamedListingKeepsRunIdOrderAcrossBatchesAndSkipsFoldersThatAreNotRuns()
    {
        // More runs than one batch (256), so the order must hold where batches meet.
        var expected = Enumerable.Range(0, 600).Select(i => $"r{i:D4}").ToList();
        foreach (string id in expected.AsEnumerable().Reverse())
        {
            Runs.Create(_root, id);
        }

        Directory.CreateDirectory(Path.Combine(_root.Path, "r0300x"));
        int projected = 0;
        var ids = _root.EnumerateRuns(null, l => { Interlocked.Increment(ref projected); return l.Run.RunId; }).ToList();
        Assert.Equal(expected, ids);
        Assert.Equal(600, projected);

        // A consumer that stops early does not have the rest read: at most its batch and the one read ahead.
        int early = 0;
        Assert.Equal(expected.Take(3), _root.EnumerateRuns(null, l => { Interlocked.Increment(ref early); return l.Run.RunId; }).Take(3));
        Thread.Sleep(200); // the batch read ahead may still be finishing; it is the last one started
        Assert.InRange(Volatile.Read(ref early), 3, 512);

        // What a projection throws arrives unwrapped.
        var thrown = Assert.Throws<InvalidOperationException>(() => _root.EnumerateRuns<string>(id => id == "r0400", _ => throw new InvalidOperationException("projection failed")).ToList());
        Assert.Equal("projection failed", thrown.Message);
    }

    [Fact]
    public void TheRunDirectoryDoesNotGrowWithItems()
    {
        int CountFiles(int items, string id)
        {
            var run = Runs.Create(_root, id);
            using var attempt = run.BeginAttempt();
            attempt.BeginStep("s");
            for (int i = 0; i < items; i++)
            {
                attempt.BeginItem("s", "k" + i);
                attempt.CompleteItem("s", "k" + i, Runs.Bytes("output " + i));
            }

            attempt.CompleteStep("s", null);
            attempt.Complete();
            return Directory.GetFiles(run.Path, "*", SearchOption.AllDirectories).Length;
        }

        Assert.Equal(CountFiles(3, "small"), CountFiles(300, "large"));
    }

    [Fact]
    public void FailingWhileAnItemIsInterruptedFailsTheRunAndLeavesTheItemInDoubt()
    {
        var run = Runs.Create(_root);
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("s");
            attempt.BeginItem("s", "k");
            var state = attempt.Fail("the host crashed the pipeline", unitInterrupted: true);
            Assert.Equal(RunStatus.Failed, state.Status);
            Assert.Null(state.CurrentStep);
        }

        var after = run.ReadState();
        Assert.Equal(RunStatus.Failed, after.Status);
        Assert.Equal(StepStatus.Failed, after.FindStep("s")!.Status);
        Assert.Null(after.CurrentStep);
        using var next = run.BeginAttempt();
        Assert.Equal("s/k", Assert.Single(next.Plan.InDoubt).ToString());
    }

    [Fact]
    public void ANewerFormatVersionInTheJournalIsRefusedToo()
    {
        var run = Runs.Create(_root);
        File.Delete(run.StatePath);
        string line = File.ReadAllLines(run.JournalPath)[0].Replace("\"format_version\":1", "\"format_version\":2", StringComparison.Ordinal);
        string body = line.Substring(0, line.Length - 18) + "}";
        uint crc = RunTools.Core.Infrastructure.Crc32.Compute(System.Text.Encoding.UTF8.GetBytes(body));
        File.WriteAllText(run.JournalPath, line.Substring(0, line.Length - 10) + crc.ToString("x8") + "\"}\n");
        Assert.Equal(ErrorIds.UnsupportedFormatVersion, Assert.Throws<RunToolsException>(() => run.ReadState()).ErrorId);
        Assert.Equal(ErrorIds.UnsupportedFormatVersion, Assert.Throws<RunToolsException>(() => run.BeginAttempt()).ErrorId);
        Assert.False(File.Exists(run.StatePath)); // nothing was rewritten in the old format
    }

    [Fact]
    public void AGeneratedIdThatCollidesIsDrawnAgain()
    {
        // Three runs hold the ids the first three draws give (same second, suffixes 0000, 1111, 2222).
        var now = new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);
        _root.Clock = () => now;
        var taken = new[] { "0000", "1111", "2222" }.Select(s => Runs.Create(_root, "20260304-050607-burst-" + s)).ToList();
        int draws = 0;
        _root.RandomSource = buffer => Array.Fill(buffer, (byte)draws++);

        var run = _root.CreateRun(new RunCreateOptions { Name = "burst" });

        Assert.Equal(4, draws);
        Assert.Equal("20260304-050607-burst-3333", run.RunId);
        var created = Assert.Single(run.ReadEvents());
        Assert.Equal(JournalEventTypes.RunCreated, created.Type);
        Assert.Equal(now, created.Timestamp);
        Assert.Equal("burst", created.Data["name"]!.GetValue<string>());

        // The runs it met are untouched: each still holds only its own creation.
        Assert.All(taken, t => Assert.Equal("test", Assert.Single(t.ReadEvents()).Data["name"]!.GetValue<string>()));
        Assert.Equal(taken.Select(t => t.RunId).Append(run.RunId), _root.EnumerateRunIds());
    }

    [Fact]
    public void WhenEveryGeneratedIdCollidesCreationFailsClearlyAfterABoundedNumberOfDraws()
    {
        var now = new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);
        _root.Clock = () => now;
        Runs.Create(_root, "20260304-050607-burst-0000");
        int draws = 0;
        _root.RandomSource = buffer =>
        {
            draws++;
            Array.Clear(buffer, 0, buffer.Length);
        };

        var ex = Assert.Throws<RunToolsException>(() => _root.CreateRun(new RunCreateOptions { Name = "burst" }));

        Assert.Equal(RunsRoot.MaxIdDraws, draws);
        Assert.Equal(ErrorIds.RunExists, ex.ErrorId);
        Assert.Equal("20260304-050607-burst-0000", ex.Target);
        Assert.Contains($"all {RunsRoot.MaxIdDraws} ids drawn for 'burst' at 2026-03-04 05:06:07Z name existing runs", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Pass -RunId", ex.Message, StringComparison.Ordinal);
        Assert.Equal(new[] { "20260304-050607-burst-0000" }, Directory.GetFileSystemEntries(_root.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void DeletingARunNeverTouchesARunningOneAndLeavesNothingHalfDone()
    {
        var running = Runs.Create(_root, "busy");
        using (running.BeginAttempt())
        {
            Assert.Equal(ErrorIds.RunLocked, Assert.Throws<RunLockedException>(() => running.Delete()).ErrorId);
            Assert.True(File.Exists(running.JournalPath));
        }

        running.Delete();
        Assert.False(Directory.Exists(running.Path));
        Assert.Empty(Directory.GetDirectories(_root.Path, ".deleting-*"));

        // A crash after the rename leaves a folder out of sight: listings ignore it, the next creation removes it.
        var other = Runs.Create(_root, "other");
        Directory.Move(other.Path, Path.Combine(_root.Path, ".deleting-other-12345678"));
        Assert.Empty(_root.ListRuns());
        Runs.Create(_root, "next");
        Assert.Empty(Directory.GetDirectories(_root.Path, ".deleting-*"));
        Assert.Equal(new[] { "next" }, _root.EnumerateRunIds());
    }

    [Fact]
    public void EnumValuesAreSpelledTheSameInTheJournalAndTheSnapshot()
    {
        var config = EffectiveConfig.FromDictionary(new System.Collections.Hashtable { ["a"] = 1 }, _dir.Combine("c.psd1"), ConfigFormat.PowerShellData);
        var run = _root.CreateRun(new RunCreateOptions { Name = "psd1", RunId = "psd1", Config = config, Script = Runs.Bytes("s") });
        Assert.Contains("\"format\":\"power_shell_data\"", File.ReadAllText(run.JournalPath), StringComparison.Ordinal);
        Assert.Contains("\"format\": \"power_shell_data\"", File.ReadAllText(run.StatePath), StringComparison.Ordinal);
        Assert.Equal(ConfigFormat.PowerShellData, run.Rebuild().Config.Format);
    }
}
