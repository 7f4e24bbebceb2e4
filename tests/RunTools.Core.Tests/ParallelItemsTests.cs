using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>Items of one step run from several threads at once on one attempt: group commit, claims, and what an end leaves in doubt.</summary>
public sealed class ParallelItemsTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RunsRoot _root;
    private readonly ITestOutputHelper _output;

    public ParallelItemsTests(ITestOutputHelper output)
    {
        _output = output;
        _root = new RunsRoot(_dir.Combine("runs"));
    }

    public void Dispose() => _dir.Dispose();

    /// <summary>An injector whose rule never fails: it only counts the journal's fsyncs into <paramref name="count"/>.</summary>
    private static FaultInjector CountJournalSyncs(RunDirectory run, StrongBox<int> count)
    {
        var injector = new FaultInjector(run.Path);
        injector.FailWhen((_, op, path) =>
        {
            if (op == DurableOp.FileSync && path == run.JournalPath)
            {
                Interlocked.Increment(ref count.Value);
            }

            return false;
        });
        return injector;
    }

    [Fact]
    public void EightThreadsShareJournalFlushesAndEveryItemIsRecordedOnce()
    {
        const int threads = 8;
        const int perThread = 200;
        var run = Runs.Create(_root);
        var journalSyncs = new StrongBox<int>();
        using var injector = CountJournalSyncs(run, journalSyncs);

        int syncsBeforeItems;
        using (var attempt = run.BeginAttempt())
        {
            Assert.Equal(StepAction.Run, attempt.BeginStep("work", null, itemsOnly: true));
            syncsBeforeItems = Volatile.Read(ref journalSyncs.Value);
            using var start = new Barrier(threads);
            var errors = new ConcurrentQueue<Exception>();
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                try
                {
                    start.SignalAndWait();
                    for (int i = 0; i < perThread; i++)
                    {
                        string key = $"t{t}-{i:D3}";
                        Assert.Equal(ItemAction.Run, attempt.ClaimItem("work", key));
                        attempt.StartItem("work", key);
                        attempt.CompleteItem("work", key, Runs.Bytes(key));
                    }
                }
                catch (Exception ex)
                {
                    errors.Enqueue(ex);
                }
            })).ToList();
            workers.ForEach(w => w.Start());
            workers.ForEach(w => Assert.True(w.Join(TimeSpan.FromMinutes(2))));
            Assert.Empty(errors);
            int itemSyncs = Volatile.Read(ref journalSyncs.Value) - syncsBeforeItems;
            _output.WriteLine($"{threads * perThread} item intents (and as many completions) took {itemSyncs} journal fsyncs");

            // Each intent must be durable before its work, yet 1,600 intents took fewer flushes: concurrent ones shared them.
            Assert.InRange(itemSyncs, 1, threads * perThread - 1);
            attempt.CompleteStep("work", null);
            attempt.Complete();
        }

        var events = run.ReadEvents().ToList();
        Assert.Equal(threads * perThread, events.Count(e => e.Type == JournalEventTypes.ItemStarted));
        var completed = events.Where(e => e.Type == JournalEventTypes.ItemCompleted).Select(e => e.Key!).ToList();
        Assert.Equal(threads * perThread, completed.Count);
        Assert.Equal(completed.Count, completed.Distinct(StringComparer.Ordinal).Count());
        Assert.Empty(run.ScanJournal().SequenceGaps);

        // The journal folds (as a reader folds it, with no snapshot) to exactly those items.
        var state = run.ReadState();
        Assert.Equal(RunStatus.Completed, state.Status);
        Assert.Equal(threads * perThread, state.ItemsCompleted);
        Assert.Empty(state.FindStep("work")!.ItemsOpen);
        Assert.True(run.Test(cancellation: TestContext.Current.CancellationToken).IsValid);
    }

    [Fact]
    public void AConcurrentDuplicateKeyIsRefusedAndTheWinnerIsUnharmed()
    {
        var run = Runs.Create(_root);
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("work", null, itemsOnly: true);
        for (int round = 0; round < 50; round++)
        {
            string key = "dup" + round;
            var outcomes = new ConcurrentQueue<string>();
            using var start = new Barrier(2);
            var racers = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
            {
                start.SignalAndWait();
                try
                {
                    outcomes.Enqueue(attempt.BeginItem("work", key).ToString());
                }
                catch (RunToolsException ex)
                {
                    outcomes.Enqueue(ex.ErrorId);
                }
            })).ToList();
            racers.ForEach(r => r.Start());
            racers.ForEach(r => Assert.True(r.Join(TimeSpan.FromSeconds(30))));
            Assert.Equal(new[] { nameof(ItemAction.Run), ErrorIds.StepNested }, outcomes.OrderBy(o => o == ErrorIds.StepNested).ToArray());
            attempt.CompleteItem("work", key, null);
        }

        // A started key claimed again, from any thread, is refused too.
        attempt.BeginItem("work", "held");
        var again = Assert.Throws<RunToolsException>(() => attempt.ClaimItem("work", "held"));
        Assert.Equal(ErrorIds.StepNested, again.ErrorId);
        attempt.CompleteItem("work", "held", null);
        attempt.CompleteStep("work", null);
        attempt.Complete();
        Assert.Equal(51, run.ReadEvents().Count(e => e.Type == JournalEventTypes.ItemStarted));
        Assert.Equal(51, run.ReadState().ItemsCompleted);
    }

    /// <summary>
    /// A completion is written at once but made durable lazily: with no next intent to carry it,
    /// the deferred flush must reach the disk on its own, within two 10 ms periods. The bound
    /// asserted is loose (a loaded CI machine) but a missing or stuck timer fails it.
    /// </summary>
    [Fact]
    public void ALastCompletionReachesTheDiskOnItsOwnWithinTheDeferredBound()
    {
        var run = Runs.Create(_root);
        using var injector = new FaultInjector(run.Path);
        var syncs = new ConcurrentQueue<long>();
        injector.FailWhen((_, op, path) =>
        {
            if (op == DurableOp.FileSync && path == run.JournalPath)
            {
                syncs.Enqueue(System.Diagnostics.Stopwatch.GetTimestamp());
            }

            return false;
        });

        var lags = new List<double>();
        using (var attempt = run.BeginAttempt())
        {
            Assert.Equal(StepAction.Run, attempt.BeginStep("work", null, itemsOnly: true));
            for (int i = 0; i < 20; i++)
            {
                string key = "k" + i;
                Assert.Equal(ItemAction.Run, attempt.BeginItem("work", key));
                while (syncs.TryDequeue(out _))
                {
                }

                attempt.CompleteItem("work", key, null);
                long completed = System.Diagnostics.Stopwatch.GetTimestamp();
                long synced;
                var waited = System.Diagnostics.Stopwatch.StartNew();
                while (!syncs.TryPeek(out synced))
                {
                    Assert.True(waited.Elapsed < TimeSpan.FromSeconds(2), $"item {key}'s completion never reached the disk without a next intent");
                    Thread.Sleep(1);
                }

                lags.Add(Math.Max(0, synced - completed) * 1000.0 / System.Diagnostics.Stopwatch.Frequency);
            }

            attempt.CompleteStep("work", null);
            attempt.Complete();
        }

        lags.Sort();
        _output.WriteLine($"deferred completion to fsync: median {lags[lags.Count / 2]:0.0} ms, max {lags[^1]:0.0} ms (bound 2 x {RunRecorder.DeferredFlushDelay.TotalMilliseconds} ms)");
        Assert.True(lags[lags.Count / 2] <= 2 * RunRecorder.DeferredFlushDelay.TotalMilliseconds + 30, $"median lag {lags[lags.Count / 2]:0.0} ms is far past the 20 ms bound");
        Assert.Equal(20, run.ReadState().ItemsCompleted);
    }

    /// <summary>Items one after another pay one journal flush each: a completion rides on the next intent's flush.</summary>
    [Fact]
    public void SequentialItemsTakeOneJournalFlushEach()
    {
        const int items = 300;
        var run = Runs.Create(_root);
        var journalSyncs = new StrongBox<int>();
        using var injector = CountJournalSyncs(run, journalSyncs);

        using var attempt = run.BeginAttempt();
        Assert.Equal(StepAction.Run, attempt.BeginStep("work", null, itemsOnly: true));
        int before = Volatile.Read(ref journalSyncs.Value);
        for (int i = 0; i < items; i++)
        {
            Assert.Equal(ItemAction.Run, attempt.BeginItem("work", "k" + i));
            attempt.CompleteItem("work", "k" + i, Runs.Bytes("k" + i));
        }

        int syncs = Volatile.Read(ref journalSyncs.Value) - before;
        _output.WriteLine($"{items} sequential items took {syncs} journal fsyncs");

        // Each intent needs its own flush; completions add none, except when a deferred timer wins a race.
        Assert.InRange(syncs, items, items + (items / 10));
        attempt.CompleteStep("work", null);
        attempt.Complete();
    }

    public static TheoryData<string> Ends() => new() { "stop", "fail" };

    [Theory]
    [MemberData(nameof(Ends))]
    public void AnEndWithItemsInFlightLeavesThemInDoubtForTheNextAttempt(string end)
    {
        var run = Runs.Create(_root);
        var started = new[] { "a", "b", "c" };
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("work", null, itemsOnly: true);
            attempt.BeginItem("work", "done");
            attempt.CompleteItem("work", "done", null);

            // Three started on worker threads and still running, one only claimed.
            var workers = started.Select(key => new Thread(() => attempt.StartItem("work", key))).ToList();
            foreach (string key in started)
            {
                Assert.Equal(ItemAction.Run, attempt.ClaimItem("work", key));
            }

            Assert.Equal(ItemAction.Run, attempt.ClaimItem("work", "claimed"));
            workers.ForEach(w => w.Start());
            workers.ForEach(w => Assert.True(w.Join(TimeSpan.FromSeconds(30))));
            Assert.Null(attempt.ActiveItem); // several are running: no single one
            var state = end == "stop"
                ? attempt.Stop(new StopRequest { RequestedAt = DateTimeOffset.UtcNow, RequestedBy = "Ctrl+C" })
                : attempt.Fail("the script was cut off", unitInterrupted: true);
            Assert.Equal(end == "stop" ? RunStatus.Stopped : RunStatus.Failed, state.Status);

            // A worker that finishes after the end cannot record anything more.
            Assert.ThrowsAny<RunToolsException>(() => attempt.CompleteItem("work", "a", null));
        }

        var events = run.ReadEvents().ToList();
        Assert.DoesNotContain(events, e => e.Key is "a" or "b" or "c" or "claimed" && e.Type is JournalEventTypes.ItemCompleted or JournalEventTypes.ItemFailed);
        Assert.Equal(started, run.ReadState().FindStep("work")!.ItemsOpen.OrderBy(k => k, StringComparer.Ordinal));
        Assert.True(run.Test(cancellation: TestContext.Current.CancellationToken).IsValid);

        // The next attempt finds exactly the started ones in doubt; the claimed one is pending, "done" is replayed.
        using var next = run.BeginAttempt(new AttemptOptions { InDoubt = InDoubtAction.Skip });
        next.BeginStep("work", null, itemsOnly: true);
        Assert.Equal(ItemAction.Replay, next.ClaimItem("work", "done"));
        foreach (string key in started)
        {
            Assert.Equal(ItemAction.Skip, next.ClaimItem("work", key));
        }

        Assert.Equal(ItemAction.Run, next.BeginItem("work", "claimed"));
        Assert.Null(next.ReadItemOutput("work", "claimed"));
        var resolved = run.ReadEvents().Where(e => e.Type == JournalEventTypes.ItemResolved).Select(e => e.Key!).OrderBy(k => k, StringComparer.Ordinal);
        Assert.Equal(started, resolved);
    }

    [Fact]
    public void FailRecordsOnlyTheCallingThreadsItemAsFailedAndLeavesOtherThreadsItemsInDoubt()
    {
        var run = Runs.Create(_root);
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("work", null, itemsOnly: true);
            Assert.Equal(ItemAction.Run, attempt.ClaimItem("work", "elsewhere"));
            var worker = new Thread(() => attempt.StartItem("work", "elsewhere"));
            worker.Start();
            Assert.True(worker.Join(TimeSpan.FromSeconds(30)));
            Assert.Equal(ItemAction.Run, attempt.ClaimItem("work", "claimed"));
            Assert.Equal(ItemAction.Run, attempt.BeginItem("work", "here"));

            // Without unitInterrupted: the failing thread's own item failed; the others' outcome is unknown.
            Assert.Equal(RunStatus.Failed, attempt.Fail("boom").Status);
        }

        var events = run.ReadEvents().ToList();
        var failed = Assert.Single(events, e => e.Type == JournalEventTypes.ItemFailed);
        Assert.Equal("here", failed.Key);
        Assert.DoesNotContain(events, e => e.Key == "claimed");
        Assert.Equal(new[] { "elsewhere" }, run.ReadState().FindStep("work")!.ItemsOpen);

        using var next = run.BeginAttempt(new AttemptOptions { InDoubt = InDoubtAction.Skip });
        Assert.Equal("elsewhere", Assert.Single(next.Plan.InDoubt).Key);
    }
}
