using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using RunTools.Core.Journal;
using RunTools.TestDriver;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>What every killed and resumed crash-test run must satisfy, wherever the kills landed.</summary>
internal static class CrashInvariants
{
    public const int Items = 30;

    public static string Key(int index) => "k" + index.ToString("D3", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Resumes the run to the end in this process and checks it; returns how many items were resolved in doubt and how many side effects ran twice.</summary>
    /// <param name="parallel">Items in flight at once in the killed attempts (and the resume): each kill may leave that many in doubt, so repeat that many.</param>
    public static (int InDoubt, int Repeats) ResumeAndCheck(string root, string effects, InDoubtAction policy, int kills, int items = Items, int parallel = 1)
    {
        var output = new StringWriter();
        int exit = CrashWorkload.Drive(root, "run", items, effects, policy, output, null, parallel);
        Assert.True(exit == 0, output.ToString());

        var run = new RunsRoot(root).OpenRun("run");
        var state = run.ReadState();
        Assert.Equal(RunStatus.Completed, state.Status);
        Assert.Equal(items, state.ItemsCompleted + state.FindStep("work")!.ItemsSkipped);

        var events = run.ReadEvents().ToList();
        var scan = run.ScanJournal();
        Assert.Empty(scan.CorruptLines);
        Assert.Empty(scan.SequenceGaps);
        Assert.Equal(0, scan.TornTailLength);

        // Every completed unit is recorded exactly once: no completion lost, none doubled.
        var completions = events.Where(e => e.Type == JournalEventTypes.ItemCompleted).GroupBy(e => e.Key!).ToList();
        Assert.All(completions, g => Assert.Single(g));
        Assert.Equal(state.ItemsCompleted, completions.Count);
        foreach (string step in PlainSteps)
        {
            // Completed once, or, under Skip, resolved once as done on the policy's word.
            Assert.Single(events, e => e.Step == step && (e.Type == JournalEventTypes.StepCompleted || IsStepSkip(e)));
        }

        Assert.Single(events, e => e.Type == JournalEventTypes.RunCompleted);

        // Side effects: a repeat only for an item that was in doubt, at most one per kill and item in flight. The same
        // item can be in doubt twice (killed during its work, retried, killed again), so each key's
        // extra runs are bounded by the times it was resolved as in doubt.
        var resolutions = events.Where(e => e.Type == JournalEventTypes.ItemResolved).GroupBy(e => e.Key!).ToDictionary(g => g.Key, g => g.Count());
        var effectCounts = EffectCounts(effects);
        var repeated = effectCounts.Where(p => p.Value > 1).Select(p => p.Key).ToList();
        int extraRuns = effectCounts.Values.Sum(c => c - 1);

        // Plain steps are units like items: a step ran again only after it was reported in doubt.
        var stepResolutions = events.Where(e => e.Type == JournalEventTypes.StepResolved).GroupBy(e => e.Step!).ToDictionary(g => g.Key, g => g.Count());
        var stepRuns = EffectCounts(CrashWorkload.StepEffectsFile(effects));
        int extraStepRuns = stepRuns.Values.Sum(c => c - 1);
        Assert.All(stepRuns.Where(p => p.Value > 1), p => Assert.True(p.Value - 1 <= stepResolutions.GetValueOrDefault(p.Key),
            $"step {p.Key} ran {p.Value} times but was in doubt {stepResolutions.GetValueOrDefault(p.Key)} time(s)"));
        Assert.True(extraRuns + extraStepRuns <= kills * parallel, $"{extraRuns} repeated item and {extraStepRuns} repeated step side effects after {kills} kill(s) with {parallel} in flight");
        foreach (string step in PlainSteps)
        {
            if (policy == InDoubtAction.Skip)
            {
                Assert.True(stepRuns.GetValueOrDefault(step) <= 1, $"step {step} ran {stepRuns.GetValueOrDefault(step)} times under Skip");
                Assert.True(stepRuns.ContainsKey(step) || events.Any(e => e.Step == step && IsStepSkip(e)), $"step {step} never ran and was not skipped");
            }
            else
            {
                Assert.True(stepRuns.ContainsKey(step), $"step {step} never ran under Retry");
                Assert.DoesNotContain(events, e => e.Step == step && IsStepSkip(e));
            }
        }

        Assert.All(repeated, key => Assert.True(effectCounts[key] - 1 <= resolutions.GetValueOrDefault(key),
            $"key {key} ran {effectCounts[key]} times but was in doubt {resolutions.GetValueOrDefault(key)} time(s)"));
        if (policy == InDoubtAction.Skip)
        {
            Assert.Empty(repeated);
            var missing = Enumerable.Range(0, items).Select(Key).Where(key => !effectCounts.ContainsKey(key)).ToList();
            Assert.All(missing, key => Assert.Contains(key, resolutions.Keys)); // skipped on the policy's word
            Assert.Equal(resolutions.Count, state.FindStep("work")!.ItemsSkipped);
        }
        else
        {
            Assert.Equal(items, effectCounts.Count);
        }

        // The next owner removes temp files a kill left behind; a run completed before the kill has no next owner.
        if (output.ToString().Contains("READY", StringComparison.Ordinal))
        {
            Assert.Empty(Directory.GetFiles(run.Path, "*.tmp-*", SearchOption.AllDirectories));
        }

        var test = run.Test();
        Assert.True(test.IsValid, "Test-Run: " + string.Join("; ", test.Problems.Select(p => $"{p.Severity} {p.Kind} {p.Path}: {p.Note}")));
        return (resolutions.Values.Sum(), extraRuns);
    }

    /// <summary>The workload's plain steps (work is items-only).</summary>
    public static readonly string[] PlainSteps = { "prepare", "finish" };

    public static bool IsStepSkip(JournalEvent e) =>
        e.Type == JournalEventTypes.StepResolved && e.Data["resolution"]?.GetValue<string>() == "skip";

    public static Dictionary<string, int> EffectCounts(string effects) =>
        (File.Exists(effects) ? File.ReadAllLines(effects) : Array.Empty<string>())
            .Where(l => l.Length > 0).GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
}

/// <summary>
/// Drives runs in child processes and SIGKILLs them at random moments (creation, attempt start,
/// mid-items, finish), then resumes. RUNTOOLS_CRASH_TRIALS scales the trial count (default 200
/// in all, split between the Retry and Skip policies so the two halves run in parallel). The
/// deterministic points are in <see cref="CrashPointTests"/>; these trials add the moments no
/// one thought of, and must land a minimum share of their kills mid-item so they cannot pass on luck.
/// </summary>
public abstract class CrashTestsBase : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ITestOutputHelper _output;
    private int _kills;
    private int _killsBeforeRun;
    private int _killsMidItem;
    private int _killsManyInFlight;
    private int _inDoubt;
    private int _repeats;
    private int _interruptedAfterKill;

    /// <summary>
    /// The least share of kills that must land mid-item. Measured on a loaded 2-core machine: 24 of
    /// 75 (Skip) and 91 of 224 (Retry) at 200 trials; a third or more, so a tenth leaves a wide margin.
    /// </summary>
    protected const double MidItemShare = 0.10;

    protected CrashTestsBase(ITestOutputHelper output) => _output = output;

    /// <summary>Work items the driver runs at once (its parallel=N); 1 runs them one by one.</summary>
    protected virtual int Parallel => 1;

    /// <summary>Work items in the workload.</summary>
    protected virtual int ItemCount => CrashInvariants.Items;

    /// <summary>Kills that found two or more items of the killed attempt in flight.</summary>
    protected int KillsManyInFlight => _killsManyInFlight;

    public void Dispose() => _dir.Dispose();

    protected static int TrialCount(double share)
    {
        int total = int.TryParse(Environment.GetEnvironmentVariable("RUNTOOLS_CRASH_TRIALS"), out int n) && n > 0 ? n : 200;
        return Math.Max(1, (int)Math.Round(total * share));
    }

    /// <param name="midItemShare">The least share of kills that must land between an item's start and its completion.</param>
    protected void RunTrials(int trials, InDoubtAction policy, int seedBase, double midItemShare)
    {
        for (int trial = 0; trial < trials; trial++)
        {
            int seed = seedBase + trial;
            try
            {
                RunTrial(seed, policy);
            }
            catch (Exception ex)
            {
                throw new Xunit.Sdk.XunitException($"crash trial with seed {seed} ({policy}) failed: {ex.Message}\n{ex}");
            }
        }

        _output.WriteLine($"{trials} trials ({policy}, {Parallel} in flight): {_kills} kills; {_killsBeforeRun} left no run yet, {_interruptedAfterKill} left it Interrupted, {_killsMidItem} landed mid-item ({_killsManyInFlight} with 2 or more in flight); {_inDoubt} items in doubt; {_repeats} side effects repeated.");
        int minimum = (int)Math.Floor(_kills * midItemShare);
        Assert.True(_killsMidItem >= minimum,
            $"only {_killsMidItem} of {_kills} kills landed mid-item (at least {minimum} expected): the random trials no longer exercise in-doubt items");
    }

    private void RunTrial(int seed, InDoubtAction policy)
    {
        var random = new Random(seed);
        string root = _dir.Combine("t" + seed);
        string effects = _dir.Combine("effects-" + seed + ".txt");
        int kills = random.Next(1, 3);
        for (int k = 0; k < kills; k++)
        {
            using var child = new Driver("drive", root, "run", ItemCount.ToString(), effects, policy.ToString(), "", "parallel=" + Parallel);
            switch (random.Next(4))
            {
                case 0:
                    // Kill without waiting: lands during process start, run creation or attempt start.
                    System.Threading.Thread.Sleep(random.Next(30, 160));
                    break;
                case 1:
                    // Soon after the attempt began: the first step, the first items.
                    Assert.True(child.WaitFor("READY", TimeSpan.FromSeconds(60)) || child.WaitFor("DONE", TimeSpan.Zero), child.Describe());
                    System.Threading.Thread.Sleep(random.Next(0, 30));
                    break;
                default:
                    // Aimed at the work step: shortly after a random item began (the child may finish first,
                    // or never run that item because an earlier attempt completed it).
                    string key = CrashInvariants.Key(random.Next(ItemCount));
                    Assert.True(child.WaitFor("ITEM " + key, TimeSpan.FromSeconds(60)) || child.WaitFor("DONE", TimeSpan.Zero), child.Describe());
                    System.Threading.Thread.Sleep(random.Next(0, 3));
                    break;
            }

            child.Kill();
            _kills++;
            Assert.DoesNotContain(child.Lines, l => l.StartsWith("ERROR", StringComparison.Ordinal) || l.StartsWith("STDERR", StringComparison.Ordinal));
            AssertReadableAfterKill(root);
        }

        var (inDoubt, repeats) = CrashInvariants.ResumeAndCheck(root, effects, policy, kills, ItemCount, Parallel);
        _inDoubt += inDoubt;
        _repeats += repeats;
    }

    private void AssertReadableAfterKill(string root)
    {
        var runs = new RunsRoot(root);
        if (!runs.EnumerateRunIds().Contains("run"))
        {
            // Killed before the run was renamed into place: nothing but a staging folder may exist.
            Assert.False(Directory.Exists(Path.Combine(root, "run")) && RunDirectory.IsRunDirectory(Path.Combine(root, "run")));
            _killsBeforeRun++;
            return;
        }

        var run = runs.OpenRun("run");
        var state = run.ReadState();
        Assert.Contains(state.Status, new[] { RunStatus.Created, RunStatus.Interrupted, RunStatus.Completed });
        if (state.Status == RunStatus.Interrupted)
        {
            _interruptedAfterKill++;
        }

        // Each attempt leaves at most as many items open as it runs at once.
        Assert.True(state.FindStep("work") is null || state.FindStep("work")!.ItemsOpen.Count <= Parallel * (1 + state.ResumeHistory.Count));

        // Mid-item: in the killed attempt, an item started and never completed.
        var killedAttempt = run.ReadEvents().Reverse().TakeWhile(e => e.Type != JournalEventTypes.AttemptStarted).ToList();
        var finished = killedAttempt.Where(e => e.Type is JournalEventTypes.ItemCompleted or JournalEventTypes.ItemFailed).Select(e => e.Key).ToHashSet();
        int inFlight = killedAttempt.Count(e => e.Type == JournalEventTypes.ItemStarted && !finished.Contains(e.Key));
        Assert.True(inFlight <= Parallel, $"{inFlight} items in flight at the kill, more than {Parallel}");
        if (inFlight > 0)
        {
            _killsMidItem++;
        }

        if (inFlight > 1)
        {
            _killsManyInFlight++;
        }
    }
}

public sealed class CrashRetryTests(ITestOutputHelper output) : CrashTestsBase(output)
{
    [Fact]
    public void KilledRunsResumeUnderRetryWithAtMostOneRepeatPerKill() => RunTrials(TrialCount(0.75), InDoubtAction.Retry, 1000, MidItemShare);
}

public sealed class CrashSkipTests(ITestOutputHelper output) : CrashTestsBase(output)
{
    [Fact]
    public void KilledRunsResumeUnderSkipWithNoRepeats() => RunTrials(TrialCount(0.25), InDoubtAction.Skip, 5000, MidItemShare);
}

/// <summary>
/// Kills at named points: the driver says "AT point" and hangs there, the parent SIGKILLs it, reads
/// the journal to prove the kill landed where intended, then resumes and checks the invariants.
/// </summary>
public sealed class CrashPointTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(CrashWorkload.KillPoints.ItemStarted, 0, InDoubtAction.Retry)]
    [InlineData(CrashWorkload.KillPoints.ItemStarted, 7, InDoubtAction.Skip)]
    [InlineData(CrashWorkload.KillPoints.ItemEffect, 7, InDoubtAction.Retry)]
    [InlineData(CrashWorkload.KillPoints.ItemEffect, 7, InDoubtAction.Skip)]
    [InlineData(CrashWorkload.KillPoints.ItemCompleted, 7, InDoubtAction.Retry)]
    [InlineData(CrashWorkload.KillPoints.ItemCompleted, 29, InDoubtAction.Skip)]
    public void AKillAtAnItemPointResumesAsThatPointImplies(string point, int index, InDoubtAction policy)
    {
        string key = CrashInvariants.Key(index);
        var (run, effects, last) = KillAt(point + ":" + index, policy);
        Assert.Equal(key, last.Key);
        var before = CrashInvariants.EffectCounts(effects);
        switch (point)
        {
            case CrashWorkload.KillPoints.ItemStarted:
                Assert.Equal(JournalEventTypes.ItemStarted, last.Type);
                Assert.False(before.ContainsKey(key), "the side effect ran before the kill point");
                break;
            case CrashWorkload.KillPoints.ItemEffect:
                Assert.Equal(JournalEventTypes.ItemStarted, last.Type);
                Assert.Equal(1, before.GetValueOrDefault(key));
                break;
            default:
                Assert.Equal(JournalEventTypes.ItemCompleted, last.Type);
                Assert.Equal(1, before.GetValueOrDefault(key));
                break;
        }

        Assert.Equal(point == CrashWorkload.KillPoints.ItemStarted ? index : index + 1, before.Count);
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        var open = run.ReadState().FindStep("work")!.ItemsOpen;
        Assert.Equal(point == CrashWorkload.KillPoints.ItemCompleted ? Array.Empty<string>() : new[] { key }, open);

        var (inDoubt, repeats) = CrashInvariants.ResumeAndCheck(Path.GetDirectoryName(run.Path)!, effects, policy, 1);

        var events = run.ReadEvents().ToList();
        var resolved = events.Where(e => e.Type == JournalEventTypes.ItemResolved).ToList();
        var after = CrashInvariants.EffectCounts(effects);
        if (point == CrashWorkload.KillPoints.ItemCompleted)
        {
            // Nothing was in doubt: no resolution, no repeat, the completion is the one from before the kill.
            Assert.Equal(0, inDoubt);
            Assert.Equal(0, repeats);
            Assert.Equal(1, Assert.Single(events, e => e.Type == JournalEventTypes.ItemCompleted && e.Key == key).Attempt);
            return;
        }

        var resolution = Assert.Single(resolved);
        Assert.Equal(key, resolution.Key);
        Assert.Equal(2, resolution.Attempt);
        Assert.Equal(policy == InDoubtAction.Skip ? "skip" : "retry", resolution.Data["resolution"]!.GetValue<string>());
        int expectedRuns = (point, policy) switch
        {
            (CrashWorkload.KillPoints.ItemStarted, InDoubtAction.Skip) => 0, // assumed done, never ran
            (CrashWorkload.KillPoints.ItemEffect, InDoubtAction.Retry) => 2, // the one repeat the kill allows
            _ => 1,
        };
        Assert.Equal(expectedRuns, after.GetValueOrDefault(key));
        Assert.Equal(expectedRuns == 2 ? 1 : 0, repeats);
        if (policy == InDoubtAction.Skip)
        {
            Assert.DoesNotContain(events, e => e.Type == JournalEventTypes.ItemCompleted && e.Key == key);
        }
        else
        {
            Assert.Equal(2, Assert.Single(events, e => e.Type == JournalEventTypes.ItemCompleted && e.Key == key).Attempt);
        }
    }

    /// <summary>
    /// A kill while an item waits between its tries: its failed try is recorded with the wait, it
    /// is failed, not in doubt, so a resume tries it again under either policy and no key repeats.
    /// </summary>
    [Theory]
    [InlineData(InDoubtAction.Retry)]
    [InlineData(InDoubtAction.Skip)]
    public void AKillDuringARetryWaitLeavesTheItemFailedAndAResumeTriesItOnce(InDoubtAction policy)
    {
        const int index = 7;
        string key = CrashInvariants.Key(index);
        var (run, effects, last) = KillAt(CrashWorkload.KillPoints.RetryWait + ":" + index, policy);

        // The kill landed in the wait: the last event is the failed try, asking for a retry.
        Assert.Equal(JournalEventTypes.ItemFailed, last.Type);
        Assert.Equal(key, last.Key);
        Assert.Null(last.Data["try"]); // the first try is written without a number
        Assert.Equal("DriverTransient", last.Data["error_id"]!.GetValue<string>());
        Assert.Equal((long)CrashWorkload.RetryWaitDelay.TotalMilliseconds, last.Data["retry_in_ms"]!.GetValue<long>());
        Assert.False(CrashInvariants.EffectCounts(effects).ContainsKey(key), "the failed try did the side effect");
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        Assert.Empty(run.ReadState().FindStep("work")!.ItemsOpen);

        var (inDoubt, repeats) = CrashInvariants.ResumeAndCheck(Path.GetDirectoryName(run.Path)!, effects, policy, 1);
        Assert.Equal(0, inDoubt);
        Assert.Equal(0, repeats);
        var events = run.ReadEvents().ToList();
        Assert.DoesNotContain(events, e => e.Type == JournalEventTypes.ItemResolved);
        Assert.Equal(1, CrashInvariants.EffectCounts(effects)[key]);
        Assert.Equal(2, Assert.Single(events, e => e.Type == JournalEventTypes.ItemCompleted && e.Key == key).Attempt);
    }

    [Fact]
    public void AKillBetweenAStepsOutputAndItsCompletionRunsTheStepAgain()
    {
        var (run, effects, last) = KillAt(CrashWorkload.KillPoints.StepOutput, InDoubtAction.Retry);
        Assert.Equal(JournalEventTypes.StepStarted, last.Type);
        Assert.Equal("prepare", last.Step);
        Assert.Equal("prepared", File.ReadAllText(Path.Combine(run.Path, "steps", "prepare", "output.txt")));
        Assert.Empty(CrashInvariants.EffectCounts(effects));

        CrashInvariants.ResumeAndCheck(Path.GetDirectoryName(run.Path)!, effects, InDoubtAction.Retry, 1);

        // The step ran again in attempt 2; the first attempt's unrecorded output is kept beside the recorded one.
        var completed = Assert.Single(run.ReadEvents(), e => e.Type == JournalEventTypes.StepCompleted && e.Step == "prepare");
        Assert.Equal(2, completed.Attempt);
        var output = run.ReadState().FindStep("prepare")!.Output!;
        Assert.Equal("steps/prepare/attempt-2/output.txt", output.Path);
        Assert.Equal("prepared", File.ReadAllText(run.ResolveRecordedPath(output.Path)));
    }

    [Fact]
    public void AKillDuringTheFinalSnapshotLeavesACompletedRun()
    {
        var (run, effects, last) = KillAt(CrashWorkload.KillPoints.FinalSnapshot, InDoubtAction.Retry);
        Assert.Equal(JournalEventTypes.RunCompleted, last.Type);

        // The snapshot on disk is the one before run_completed; its full replacement never got renamed into place.
        Assert.Equal("running", StoredStatus(run.StatePath));
        string temp = Assert.Single(Directory.GetFiles(run.Path, "." + Path.GetFileName(run.StatePath) + ".tmp-*"));
        Assert.Equal("completed", StoredStatus(temp));

        // Readers fold the journal's tail over the stale snapshot: the run reads Completed, nothing to resume.
        Assert.Equal(RunStatus.Completed, run.ReadState().Status);
        CrashInvariants.ResumeAndCheck(Path.GetDirectoryName(run.Path)!, effects, InDoubtAction.Retry, 1);
        Assert.Equal(1, run.ReadState().Attempt);
        Assert.Equal(CrashInvariants.Items, CrashInvariants.EffectCounts(effects).Values.Sum());
    }

    private static string? StoredStatus(string path)
    {
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(path));
        return json.RootElement.GetProperty("status").GetString();
    }

    /// <summary>Starts a driver that stops dead at <paramref name="point"/>, kills it there and returns the run and its journal's last event.</summary>
    private (RunDirectory Run, string Effects, JournalEvent Last) KillAt(string point, InDoubtAction policy)
    {
        string root = _dir.Combine("root");
        string effects = _dir.Combine("effects.txt");
        using (var child = new Driver("drive", root, "run", CrashInvariants.Items.ToString(), effects, policy.ToString(), point))
        {
            child.Expect("AT " + point, TimeSpan.FromSeconds(60));
            child.Kill();
            Assert.DoesNotContain(child.Lines, l => l.StartsWith("ERROR", StringComparison.Ordinal) || l.StartsWith("STDERR", StringComparison.Ordinal) || l == "DONE");
        }

        var run = new RunsRoot(root).OpenRun("run");
        Assert.False(run.IsOwned);
        Assert.Equal(0, run.ScanJournal().TornTailLength);
        return (run, effects, run.ReadEvents().Last());
    }
}
