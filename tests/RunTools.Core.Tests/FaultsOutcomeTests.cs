using System;
using System.Collections.Generic;
using System.Collections;
using System.IO;
using System.Linq;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.TestDriver;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// Issue 11, items 4-5: steps in doubt after a real kill, and outcomes that must not be misrecorded
/// (configs that do not parse, self-references, foreign run ids, a forged completion).
/// </summary>
public sealed class InDoubtStepKillTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>
    /// A real SIGKILL at each point around a plain step's start and completion. Before
    /// step_completed is durable the step is in doubt (named by the plan), and the policy decides:
    /// Retry runs it again (one repeat at most, after a step_resolved retry), Skip never runs it
    /// again. After step_completed nothing is in doubt and nothing repeats.
    /// </summary>
    [Theory]
    [InlineData(CrashWorkload.KillPoints.StepStarted, "prepare", InDoubtAction.Retry)]
    [InlineData(CrashWorkload.KillPoints.StepStarted, "finish", InDoubtAction.Skip)]
    [InlineData(CrashWorkload.KillPoints.StepEffect, "prepare", InDoubtAction.Skip)]
    [InlineData(CrashWorkload.KillPoints.StepEffect, "finish", InDoubtAction.Retry)]
    [InlineData(CrashWorkload.KillPoints.StepEffect, "finish", InDoubtAction.Skip)]
    [InlineData(CrashWorkload.KillPoints.StepOutput, "prepare", InDoubtAction.Skip)]
    [InlineData(CrashWorkload.KillPoints.StepCompleted, "prepare", InDoubtAction.Skip)]
    [InlineData(CrashWorkload.KillPoints.StepCompleted, "finish", InDoubtAction.Retry)]
    public void AKillAroundAStepLeavesItInDoubtUntilItsCompletionIsDurable(string point, string step, InDoubtAction policy)
    {
        string killPoint = point == CrashWorkload.KillPoints.StepOutput ? point : point + ":" + step;
        var (run, effects) = KillAt(killPoint, policy);
        string stepEffects = CrashWorkload.StepEffectsFile(effects);
        bool effectBefore = point != CrashWorkload.KillPoints.StepStarted;
        Assert.Equal(effectBefore ? 1 : 0, CrashInvariants.EffectCounts(stepEffects).GetValueOrDefault(step));

        bool inDoubt = point != CrashWorkload.KillPoints.StepCompleted;
        var plan = run.Plan();
        if (inDoubt)
        {
            var doubt = Assert.Single(plan.InDoubtSteps);
            Assert.Equal(step, doubt.Step);
            Assert.Equal(1, doubt.Attempt);
        }
        else
        {
            Assert.Empty(plan.InDoubtSteps);
        }

        var observer = new RecordingObserver();
        using (var attempt = run.BeginAttempt(new AttemptOptions { InDoubt = policy, Observer = observer }))
        {
            if (inDoubt)
            {
                Assert.Contains(observer.Warnings, w => w.Contains($"Step '{step}' is in doubt", StringComparison.Ordinal) && w.Contains("Policy: " + policy, StringComparison.Ordinal));
            }
            else
            {
                Assert.DoesNotContain(observer.Warnings, w => w.Contains("in doubt", StringComparison.Ordinal));
            }
        }

        CrashInvariants.ResumeAndCheck(Path.GetDirectoryName(run.Path)!, effects, policy, 1);

        var events = run.ReadEvents().ToList();
        var resolved = events.Where(e => e.Type == JournalEventTypes.StepResolved).ToList();
        int runs = CrashInvariants.EffectCounts(stepEffects).GetValueOrDefault(step);
        var record = run.ReadState().FindStep(step)!;
        Assert.Equal(StepStatus.Completed, record.Status);
        if (!inDoubt)
        {
            Assert.Empty(resolved);
            Assert.Equal(1, runs);
            Assert.Equal(1, Assert.Single(events, e => e.Type == JournalEventTypes.StepCompleted && e.Step == step).Attempt);
            return;
        }

        var resolution = Assert.Single(resolved);
        Assert.Equal(step, resolution.Step);
        Assert.Equal(policy == InDoubtAction.Skip ? "skip" : "retry", resolution.Data["resolution"]!.GetValue<string>());
        if (policy == InDoubtAction.Skip)
        {
            // Done on the policy's word: never run again, no step_completed, no output to replay.
            Assert.Equal(effectBefore ? 1 : 0, runs);
            Assert.True(record.Skipped);
            Assert.Null(record.Output);
            Assert.DoesNotContain(events, e => e.Type == JournalEventTypes.StepCompleted && e.Step == step);
        }
        else
        {
            Assert.Equal(effectBefore ? 2 : 1, runs);
            Assert.False(record.Skipped);
            // Attempt 2 only looked (and warned); attempt 3 resolved and ran the step.
            var restarted = Assert.Single(events, e => e.Type == JournalEventTypes.StepStarted && e.Step == step && e.Attempt == 3);
            Assert.Equal("in_doubt", restarted.Data["previous"]!.GetValue<string>());
        }

        if (point == CrashWorkload.KillPoints.StepOutput)
        {
            // The output written before the kill was never recorded: it is kept, and vouches for nothing.
            Assert.True(File.Exists(Path.Combine(run.Path, "steps", "prepare", "output.txt")));
            Assert.True(run.Test(cancellation: TestContext.Current.CancellationToken).IsValid);
        }
    }

    [Fact]
    public void PolicyFailRefusesTheResumeNamingTheStepAndWritesNothingButTheRefusal()
    {
        var (run, effects) = KillAt(CrashWorkload.KillPoints.StepEffect + ":finish", InDoubtAction.Fail);
        long before = new FileInfo(run.JournalPath).Length;

        var ex = Assert.Throws<InDoubtItemsException>(() => run.BeginAttempt(new AttemptOptions { InDoubt = InDoubtAction.Fail }).Dispose());
        Assert.Equal(ErrorIds.InDoubtItems, ex.ErrorId);
        Assert.Equal("finish", Assert.Single(ex.Steps).Step);
        Assert.Empty(ex.Items);
        Assert.Contains("'finish', started in attempt 1", ex.Message, StringComparison.Ordinal);

        var refusal = run.ReadEvents(before).Single();
        Assert.Equal(JournalEventTypes.ResumeRefused, refusal.Type);
        Assert.Equal(1, refusal.Data["steps"]!.GetValue<int>());
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        Assert.Equal(1, CrashInvariants.EffectCounts(CrashWorkload.StepEffectsFile(effects))["finish"]);
    }

    private (RunDirectory Run, string Effects) KillAt(string point, InDoubtAction policy)
    {
        string root = _dir.Combine("root");
        string effects = _dir.Combine("effects.txt");
        using (var child = new Driver("drive", root, "run", CrashInvariants.Items.ToString(System.Globalization.CultureInfo.InvariantCulture), effects, policy.ToString(), point))
        {
            child.Expect("AT " + point, TimeSpan.FromSeconds(60));
            child.Kill();
        }

        var run = new RunsRoot(root).OpenRun("run");
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        return (run, effects);
    }
}

public sealed class InDoubtStepTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ADeciderGetsTheStepAndItsAnswerIsJournaledLikeAnItems()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using (var first = run.BeginAttempt())
        {
            Assert.Equal(StepAction.Run, first.BeginStep("upload"));
        }

        StepRef? seen = null;
        using (var second = run.BeginAttempt(new AttemptOptions { InDoubtDecidedPerItem = true }))
        {
            Assert.Equal(StepAction.Skip, second.BeginStep("upload", s => { seen = s; return InDoubtAction.Skip; }));
            Assert.Null(second.ReadStepOutput("upload"));
            Assert.Equal(StepAction.Run, second.BeginStep("report"));
            second.CompleteStep("report", null);
            Assert.Equal(RunStatus.Completed, second.Complete().Status);
        }

        Assert.Equal("upload", seen!.Step);
        Assert.Equal(1, seen.Attempt);
        Assert.Equal("Step", seen.Kind);
        var state = run.ReadState();
        Assert.Equal(new[] { "upload" }, state.ResumeHistory.Single().InDoubtSteps.Select(s => s.Step));
        Assert.True(state.FindStep("upload")!.Skipped);
        Assert.True(run.Test(cancellation: TestContext.Current.CancellationToken).IsValid);

        // A later attempt replays the skipped step: nothing, since it has no output.
        Assert.Null(run.Plan().InDoubtSteps.FirstOrDefault());
    }

    [Fact]
    public void ADeciderAnsweringFailStopsAtTheStepWithInDoubtItems()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using (var first = run.BeginAttempt())
        {
            first.BeginStep("a");
        }

        using var second = run.BeginAttempt();
        var ex = Assert.Throws<InDoubtItemsException>(() => second.BeginStep("a", _ => InDoubtAction.Fail));
        Assert.Equal("a", Assert.Single(ex.Steps).Step);
        Assert.Null(second.ActiveStep);
    }

    [Fact]
    public void AStepWhoseItemsCarryTheDoubtAndAnItemsOnlyStepAreNotInDoubtThemselves()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using (var first = run.BeginAttempt())
        {
            first.BeginStep("mixed");
            first.BeginItem("mixed", "k1");
        }

        // The step's body runs again to reach its keys; the doubt is the item's.
        var plan = run.Plan();
        Assert.Empty(plan.InDoubtSteps);
        Assert.Equal("mixed/k1", Assert.Single(plan.InDoubt).ToString());

        using (var second = run.BeginAttempt())
        {
            Assert.Equal(StepAction.Run, second.BeginStep("mixed"));
            Assert.Equal(ItemAction.Run, second.BeginItem("mixed", "k1"));
            second.CompleteItem("mixed", "k1", null);
            second.CompleteStep("mixed", null);

            // Killed before its first item: an items-only step (Invoke-RunItem -Step) did no work of its own.
            second.BeginStep("only", null, itemsOnly: true);
        }

        plan = run.Plan();
        Assert.Empty(plan.InDoubtSteps);
        Assert.Empty(plan.InDoubt);
    }

    [Fact]
    public void AStepStoppedByCtrlCInsideItsBodyIsInDoubtOnResume()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using (var first = run.BeginAttempt())
        {
            first.BeginStep("train");
            first.Stop(new StopRequest { RequestedBy = "Ctrl+C" });
        }

        Assert.Equal(RunStatus.Stopped, run.ReadState().Status);
        Assert.Equal("train", Assert.Single(run.Plan().InDoubtSteps).Step);
    }
}

public sealed class OutcomeRecordTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void AForgedCompletionOverUnfinishedWorkIsInvalidWithTypedRows()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("a");
            attempt.CompleteStep("a", null);
            attempt.BeginStep("b");
            attempt.BeginItem("b", "k1");
        }

        Forge(run, JournalEventTypes.RunCompleted);
        Assert.Equal(RunStatus.Completed, run.ReadState().Status);

        var result = run.Test(cancellation: TestContext.Current.CancellationToken);
        Assert.False(result.IsValid);
        var step = Assert.Single(result.Problems, p => p.Kind == RunProblemKind.IncompleteRun && p.Key is null);
        Assert.Equal("b", step.Step);
        Assert.Equal("completed", step.Expected);
        var item = Assert.Single(result.Problems, p => p.Kind == RunProblemKind.IncompleteRun && p.Key == "k1");
        Assert.Equal(RunProblemSeverity.Error, item.Severity);
    }

    [Fact]
    public void AnHonestCompletionIsValid()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("a");
            attempt.CompleteStep("a", null);
            attempt.Complete();
        }

        Assert.DoesNotContain(run.Test(cancellation: TestContext.Current.CancellationToken).Problems, p => p.Kind == RunProblemKind.IncompleteRun);
    }

    [Fact]
    public void ARunDirectoryHoldingAnotherRunsFilesIsRunDamagedEverywhere()
    {
        var root = new RunsRoot(_dir.Path);
        var original = Runs.Create(root, "r1");
        Runs.Create(root, "r3");
        CopyDirectory(original.Path, Path.Combine(_dir.Path, "r2"));
        var copy = RunDirectory.Open(Path.Combine(_dir.Path, "r2"));

        var read = Assert.Throws<RunToolsException>(() => copy.ReadState());
        Assert.Equal(ErrorIds.RunDamaged, read.ErrorId);
        Assert.Contains("'r1'", read.Message, StringComparison.Ordinal);

        // Listing goes on with the others; the bad one carries its error.
        var listings = root.ListRuns();
        Assert.Equal(new[] { "r1", "r2", "r3" }, listings.Select(l => l.Run.RunId));
        Assert.Equal(ErrorIds.RunDamaged, listings.Single(l => l.Run.RunId == "r2").Error!.ErrorId);
        Assert.All(listings.Where(l => l.Run.RunId != "r2"), l => Assert.Null(l.Error));

        Assert.Equal(ErrorIds.RunDamaged, Assert.Throws<RunToolsException>(() => copy.BeginAttempt().Dispose()).ErrorId);
        Assert.Equal(RunStatus.Created, original.ReadState().Status); // nothing was written to either

        var test = copy.Test(cancellation: TestContext.Current.CancellationToken);
        Assert.False(test.IsValid);
        Assert.Equal(new[] { "run.json#/run_id", "journal.jsonl#run_created/run_id" },
            test.Problems.Where(p => p.Kind == RunProblemKind.RunIdMismatch).Select(p => p.Path));
    }

    [Fact]
    public void OnlyTheJournalNamingAnotherRunIsEnoughToRefuse()
    {
        var root = new RunsRoot(_dir.Path);
        var r1 = Runs.Create(root, "r1");
        var r2 = Runs.Create(root, "r2");
        File.Copy(r1.JournalPath, r2.JournalPath, overwrite: true); // same length: the snapshot is used as is

        // Listing does not read the journal (Get-Run would pay a second read per run); an attempt
        // and Test-Run do, and refuse or report it.
        Assert.Equal(ErrorIds.RunDamaged, Assert.Throws<RunToolsException>(() => r2.BeginAttempt()).ErrorId);
        Assert.Single(r2.Test(cancellation: TestContext.Current.CancellationToken).Problems, p => p.Kind == RunProblemKind.RunIdMismatch && p.Path.StartsWith("journal.jsonl", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(".json", "{\"a\": 1, \"a\": 2}")]
    [InlineData(".json", "{\"a\": ")]
    [InlineData(".json", "[1, 2]")]
    [InlineData(".yaml", "a: 1\na: 2\n")]
    [InlineData(".yaml", "a: [1, 2\n")]
    [InlineData(".yaml", "- 1\n- 2\n")]
    public void ConfigsThatDoNotParseAreInvalidConfig(string extension, string text)
    {
        string path = _dir.Combine("config" + extension);
        File.WriteAllText(path, text);
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromFile(path));
        Assert.Equal(ErrorIds.InvalidConfig, ex.ErrorId);
    }

    [Fact]
    public void ASelfReferencingDictionaryIsInvalidConfigNotAStackOverflow()
    {
        var config = new Hashtable { ["a"] = 1 };
        var inner = new Hashtable { ["parent"] = config };
        config["child"] = inner;
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(config));
        Assert.Contains("contains itself", ex.Message, StringComparison.Ordinal);
        Assert.Contains("child.parent", ex.Message, StringComparison.Ordinal);

        var list = new ArrayList { 1 };
        list.Add(list);
        Assert.Contains("contains itself", Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(new Hashtable { ["l"] = list })).Message, StringComparison.Ordinal);

        // A value shared by two keys is not a cycle.
        var shared = new ArrayList { 1, 2 };
        Assert.Equal("{\"x\":[1,2],\"y\":[1,2]}", EffectiveConfig.FromDictionary(new Hashtable { ["x"] = shared, ["y"] = shared }).CanonicalJson);
    }

    [Fact]
    public void NestingDeeperThanTheCapIsInvalidConfig()
    {
        var top = new Hashtable();
        var current = top;
        for (int i = 0; i < EffectiveConfig.MaxDepth + 5; i++)
        {
            var next = new Hashtable();
            current["n"] = next;
            current = next;
        }

        Assert.Contains("nested more than", Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(top)).Message, StringComparison.Ordinal);
    }

    private static void Forge(RunDirectory run, string type)
    {
        var scan = run.ScanJournal();
        using var writer = new JournalWriter(run.JournalPath, scan.ValidLength, scan.LastSequence);
        writer.Append(type, DateTimeOffset.UtcNow, null);
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
