using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using RunTools.Core.Journal;
using RunTools.TestDriver;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// Drives runs in child processes and SIGKILLs them at random points (creation, attempt start,
/// mid-items, finish), then resumes. RUNTOOLS_CRASH_TRIALS scales the trial count (default 200
/// in all, split between the Retry and Skip policies so the two halves run in parallel).
/// </summary>
public abstract class CrashTestsBase : IDisposable
{
    private const int Items = 30;
    private readonly TempDir _dir = new();
    private readonly ITestOutputHelper _output;
    private int _kills;
    private int _killsBeforeRun;
    private int _inDoubt;
    private int _repeats;
    private int _interruptedAfterKill;

    protected CrashTestsBase(ITestOutputHelper output) => _output = output;

    public void Dispose() => _dir.Dispose();

    protected static int TrialCount(double share)
    {
        int total = int.TryParse(Environment.GetEnvironmentVariable("RUNTOOLS_CRASH_TRIALS"), out int n) && n > 0 ? n : 200;
        return Math.Max(1, (int)Math.Round(total * share));
    }

    protected void RunTrials(int trials, InDoubtAction policy, int seedBase)
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

        _output.WriteLine($"{trials} trials ({policy}): {_kills} kills; {_killsBeforeRun} left no run yet, {_interruptedAfterKill} left it Interrupted; {_inDoubt} items in doubt; {_repeats} side effects repeated.");
    }

    private void RunTrial(int seed, InDoubtAction policy)
    {
        var random = new Random(seed);
        string root = _dir.Combine("t" + seed);
        string effects = _dir.Combine("effects-" + seed + ".txt");
        string policyName = policy.ToString();
        int kills = random.Next(1, 3);
        for (int k = 0; k < kills; k++)
        {
            using var child = new Driver("drive", root, "run", Items.ToString(), effects, policyName);
            if (random.Next(4) == 0)
            {
                // Kill without waiting: lands during process start, run creation or attempt start.
                System.Threading.Thread.Sleep(random.Next(30, 160));
            }
            else
            {
                Assert.True(child.WaitFor("READY", TimeSpan.FromSeconds(60)) || child.WaitFor("DONE", TimeSpan.Zero), child.Describe());
                System.Threading.Thread.Sleep(random.Next(0, 30));
            }

            child.Kill();
            _kills++;
            Assert.DoesNotContain(child.Lines, l => l.StartsWith("ERROR", StringComparison.Ordinal) || l.StartsWith("STDERR", StringComparison.Ordinal));
            AssertReadableAfterKill(root);
        }

        // Resume to the end in this process.
        var output = new StringWriter();
        int exit = CrashWorkload.Drive(root, "run", Items, effects, policy, output);
        Assert.True(exit == 0, output.ToString());

        var run = new RunsRoot(root).OpenRun("run");
        var state = run.ReadState();
        Assert.Equal(RunStatus.Completed, state.Status);
        Assert.Equal(Items, state.ItemsCompleted + state.FindStep("work")!.ItemsSkipped);

        var events = run.ReadEvents().ToList();
        var scan = run.ScanJournal();
        Assert.Empty(scan.CorruptLines);
        Assert.Empty(scan.SequenceGaps);
        Assert.Equal(0, scan.TornTailLength);

        // Every completed unit is recorded exactly once.
        var completions = events.Where(e => e.Type == JournalEventTypes.ItemCompleted).GroupBy(e => e.Key!).ToList();
        Assert.All(completions, g => Assert.Single(g));
        Assert.Single(events, e => e.Type == JournalEventTypes.StepCompleted && e.Step == "prepare");
        Assert.Single(events, e => e.Type == JournalEventTypes.RunCompleted);

        // Side effects: a repeat only for an item that was in doubt, at most one per kill. The same
        // item can be in doubt twice (killed during its work, retried, killed again), so each key's
        // extra runs are bounded by the times it was resolved as in doubt.
        var resolutions = events.Where(e => e.Type == JournalEventTypes.ItemResolved).GroupBy(e => e.Key!).ToDictionary(g => g.Key, g => g.Count());
        var inDoubtKeys = resolutions.Keys.ToHashSet();
        var effectCounts = (File.Exists(effects) ? File.ReadAllLines(effects) : Array.Empty<string>())
            .Where(l => l.Length > 0).GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
        var repeated = effectCounts.Where(p => p.Value > 1).Select(p => p.Key).ToList();
        int extraRuns = effectCounts.Values.Sum(c => c - 1);
        _inDoubt += resolutions.Values.Sum();
        _repeats += extraRuns;
        Assert.True(extraRuns <= kills, $"{extraRuns} repeated side effects after {kills} kill(s)");
        Assert.All(repeated, key => Assert.True(effectCounts[key] - 1 <= resolutions.GetValueOrDefault(key),
            $"key {key} ran {effectCounts[key]} times but was in doubt {resolutions.GetValueOrDefault(key)} time(s)"));
        if (policy == InDoubtAction.Skip)
        {
            Assert.Empty(repeated);
            var missing = Enumerable.Range(0, Items).Select(i => "k" + i.ToString("D3")).Where(key => !effectCounts.ContainsKey(key)).ToList();
            Assert.All(missing, key => Assert.Contains(key, inDoubtKeys)); // skipped on the policy's word
        }
        else
        {
            Assert.Equal(Items, effectCounts.Count);
        }

        // The next owner removes temp files a kill left behind; a run completed before the kill has no next owner.
        if (output.ToString().Contains("READY", StringComparison.Ordinal))
        {
            Assert.Empty(Directory.GetFiles(run.Path, "*.tmp-*", SearchOption.AllDirectories));
        }
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

        var state = runs.OpenRun("run").ReadState();
        Assert.Contains(state.Status, new[] { RunStatus.Created, RunStatus.Interrupted, RunStatus.Completed });
        if (state.Status == RunStatus.Interrupted)
        {
            _interruptedAfterKill++;
        }

        Assert.True(state.FindStep("work") is null || state.FindStep("work")!.ItemsOpen.Count <= 1 + state.ResumeHistory.Count);
    }
}

public sealed class CrashRetryTests(ITestOutputHelper output) : CrashTestsBase(output)
{
    [Fact]
    public void KilledRunsResumeUnderRetryWithAtMostOneRepeatPerKill() => RunTrials(TrialCount(0.75), InDoubtAction.Retry, 1000);
}

public sealed class CrashSkipTests(ITestOutputHelper output) : CrashTestsBase(output)
{
    [Fact]
    public void KilledRunsResumeUnderSkipWithNoRepeats() => RunTrials(TrialCount(0.25), InDoubtAction.Skip, 5000);
}
