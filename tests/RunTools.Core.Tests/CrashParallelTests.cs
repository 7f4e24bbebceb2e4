using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using RunTools.Core.Journal;
using RunTools.TestDriver;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// The random crash trials with 8 items in flight (the driver's parallel=8): each kill may leave up
/// to 8 items in doubt, so a kill may cost up to 8 repeats, and only of keys resolved in doubt.
/// 64 items, so that the work step has several waves of 8. Fewer trials than the sequential ones
/// (RUNTOOLS_CRASH_TRIALS scales both): they add the kills landing among concurrent items.
/// </summary>
public abstract class CrashParallelTestsBase(ITestOutputHelper output) : CrashTestsBase(output)
{
    public const int InFlight = 8;

    /// <summary>
    /// The least share of trials whose kills must find two or more items in flight (measured: 20 such kills
    /// in 40 trials under Retry, 10 in 20 under Skip, on a loaded 2-core machine), so that the trials
    /// cannot pass without exercising concurrent items.
    /// </summary>
    protected const double ManyInFlightShare = 0.05;

    protected override int Parallel => InFlight;

    protected override int ItemCount => 64;

    protected void RunParallelTrials(int trials, InDoubtAction policy, int seedBase)
    {
        RunTrials(trials, policy, seedBase, MidItemShare);
        Assert.True(KillsManyInFlight >= (int)Math.Floor(trials * ManyInFlightShare),
            $"only {KillsManyInFlight} kills found several items in flight: the trials no longer exercise concurrent items");
    }
}

public sealed class CrashParallelRetryTests(ITestOutputHelper output) : CrashParallelTestsBase(output)
{
    [Fact]
    public void KilledParallelRunsResumeUnderRetryWithAtMostEightRepeatsPerKill() => RunParallelTrials(TrialCount(0.2), InDoubtAction.Retry, 20000);
}

public sealed class CrashParallelSkipTests(ITestOutputHelper output) : CrashParallelTestsBase(output)
{
    [Fact]
    public void KilledParallelRunsResumeUnderSkipWithNoRepeats() => RunParallelTrials(TrialCount(0.1), InDoubtAction.Skip, 25000);
}

/// <summary>
/// Kills at named points with 8 items in flight: one worker stops dead at the point, the others at
/// their next milestone, the parent SIGKILLs the driver, reads the journal to prove where the kill
/// landed, resumes, and checks that the resume did exactly what the policy says for every key.
/// </summary>
public sealed class CrashParallelPointTests(ITestOutputHelper output) : IDisposable
{
    private const int Items = 64;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(CrashWorkload.KillPoints.ItemStarted, 20, InDoubtAction.Retry)]
    [InlineData(CrashWorkload.KillPoints.ItemStarted, 20, InDoubtAction.Skip)]
    [InlineData(CrashWorkload.KillPoints.ItemEffect, 20, InDoubtAction.Retry)]
    [InlineData(CrashWorkload.KillPoints.ItemEffect, 20, InDoubtAction.Skip)]
    [InlineData(CrashWorkload.KillPoints.ItemCompleted, 20, InDoubtAction.Retry)]
    [InlineData(CrashWorkload.KillPoints.JournalFlush, 20, InDoubtAction.Retry)]
    [InlineData(CrashWorkload.KillPoints.JournalFlush, 20, InDoubtAction.Skip)]
    [InlineData(CrashWorkload.KillPoints.RetryWait, 20, InDoubtAction.Retry)]
    [InlineData(CrashWorkload.KillPoints.RetryWait, 20, InDoubtAction.Skip)]
    public void AKillAmongEightItemsInFlightResumesAsThePolicySays(string point, int index, InDoubtAction policy)
    {
        string root = _dir.Combine("root");
        string effects = _dir.Combine("effects.txt");
        string killPoint = point + ":" + index;
        string key;
        using (var child = new Driver("drive", root, "run", Items.ToString(), effects, policy.ToString(), killPoint, "parallel=" + CrashParallelTestsBase.InFlight))
        {
            child.Expect("AT " + killPoint, TimeSpan.FromSeconds(60));

            // Give the other workers a moment to reach their next milestone, where they stop too.
            System.Threading.Thread.Sleep(200);
            child.Kill();
            Assert.DoesNotContain(child.Lines, l => l.StartsWith("ERROR", StringComparison.Ordinal) || l.StartsWith("STDERR", StringComparison.Ordinal) || l == "DONE");

            // journal_flush:N names the N-th intent flush, whichever worker waited for it: the driver says whose.
            key = point == CrashWorkload.KillPoints.JournalFlush
                ? Assert.Single(child.Lines, l => l.StartsWith("FLUSH ", StringComparison.Ordinal)).Substring("FLUSH ".Length)
                : CrashInvariants.Key(index);
        }

        var run = new RunsRoot(root).OpenRun("run");
        Assert.False(run.IsOwned);
        Assert.Equal(0, run.ScanJournal().TornTailLength);
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        var before = run.ReadEvents().ToList();
        var effectsBefore = CrashInvariants.EffectCounts(effects);
        var completedBefore = before.Where(e => e.Type == JournalEventTypes.ItemCompleted).Select(e => e.Key!).ToHashSet();
        var open = run.ReadState().FindStep("work")!.ItemsOpen.ToList();

        // The kill landed where intended: the named key's journal and side effect are as the point says.
        Assert.Contains(before, e => e.Type == JournalEventTypes.ItemStarted && e.Key == key);
        switch (point)
        {
            case CrashWorkload.KillPoints.ItemStarted:
            case CrashWorkload.KillPoints.JournalFlush:
                Assert.Contains(key, open);
                Assert.False(effectsBefore.ContainsKey(key), "the side effect ran before the kill point");
                break;
            case CrashWorkload.KillPoints.ItemEffect:
                Assert.Contains(key, open);
                Assert.Equal(1, effectsBefore.GetValueOrDefault(key));
                break;
            case CrashWorkload.KillPoints.RetryWait:
                // Failed with a retry pending, not in doubt: a resume tries it again under either policy.
                var failed = Assert.Single(before, e => e.Type == JournalEventTypes.ItemFailed && e.Key == key);
                Assert.Equal((long)CrashWorkload.RetryWaitDelay.TotalMilliseconds, failed.Data["retry_in_ms"]!.GetValue<long>());
                Assert.DoesNotContain(key, open);
                Assert.False(effectsBefore.ContainsKey(key), "the failed try did the side effect");
                break;
            default:
                Assert.Contains(key, completedBefore);
                Assert.DoesNotContain(key, open);
                Assert.Equal(1, effectsBefore.GetValueOrDefault(key));
                break;
        }

        // At most 8 in doubt; no completed item is open; every side effect so far belongs to a started item, once.
        Assert.InRange(open.Count, point is CrashWorkload.KillPoints.ItemCompleted or CrashWorkload.KillPoints.RetryWait ? 0 : 1, CrashParallelTestsBase.InFlight);
        Assert.Empty(open.Intersect(completedBefore));
        Assert.All(effectsBefore, p => Assert.Equal(1, p.Value));
        Assert.All(completedBefore, k => Assert.True(effectsBefore.ContainsKey(k), $"{k} completed without its side effect"));
        Assert.All(effectsBefore.Keys, k => Assert.True(completedBefore.Contains(k) || open.Contains(k), $"{k} did its side effect but is neither completed nor open"));

        output.WriteLine($"killed at {killPoint} ({key}): {completedBefore.Count} completed, in doubt {string.Join(" ", open)}, {open.Count(k => effectsBefore.ContainsKey(k))} of them after their side effect");
        var (inDoubt, repeats) = CrashInvariants.ResumeAndCheck(root, effects, policy, 1, Items, CrashParallelTestsBase.InFlight);
        Assert.Equal(open.Count, inDoubt);

        // Exactly what the policy says, key by key: Retry runs every open key once more, Skip none;
        // completed keys never run again; keys never started run once.
        var after = CrashInvariants.EffectCounts(effects);
        var events = run.ReadEvents().ToList();
        var resolved = events.Where(e => e.Type == JournalEventTypes.ItemResolved).ToList();
        Assert.Equal(open.OrderBy(k => k, StringComparer.Ordinal), resolved.Select(e => e.Key!).OrderBy(k => k, StringComparer.Ordinal));
        Assert.All(resolved, e => Assert.Equal(policy == InDoubtAction.Skip ? "skip" : "retry", e.Data["resolution"]!.GetValue<string>()));
        for (int i = 0; i < Items; i++)
        {
            string k = CrashInvariants.Key(i);
            int expected = completedBefore.Contains(k) ? 1
                : open.Contains(k) ? effectsBefore.GetValueOrDefault(k) + (policy == InDoubtAction.Retry ? 1 : 0)
                : 1;
            Assert.True(expected == after.GetValueOrDefault(k), $"{k}: {after.GetValueOrDefault(k)} side effect(s), {expected} expected (open: {open.Contains(k)}, completed before: {completedBefore.Contains(k)})");
        }

        Assert.Equal(open.Count(k => effectsBefore.ContainsKey(k)) * (policy == InDoubtAction.Retry ? 1 : 0), repeats);
        if (point == CrashWorkload.KillPoints.ItemCompleted)
        {
            Assert.Equal(1, Assert.Single(events, e => e.Type == JournalEventTypes.ItemCompleted && e.Key == key).Attempt);
        }

        if (point == CrashWorkload.KillPoints.RetryWait)
        {
            Assert.DoesNotContain(resolved, e => e.Key == key);
            Assert.Equal(2, Assert.Single(events, e => e.Type == JournalEventTypes.ItemCompleted && e.Key == key).Attempt);
        }
    }
}
