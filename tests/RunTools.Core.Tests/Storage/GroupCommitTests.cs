using System;
using System.Collections.Concurrent;
using System.IO;
using System.Linq;
using System.Threading;
using RunTools.Core.Storage;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>
/// Group commit, with a flush the test drives: each flush reports the sequence it covers, then
/// blocks until the test hands it an outcome (success, or the exception it fails with).
/// </summary>
public sealed class GroupCommitTests
{
    // Generous: a bound on waiting for a signal that should come, never a measure of speed.
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly BlockingCollection<long> _started = new();
    private readonly BlockingCollection<Exception?> _outcomes = new();
    private long _appended;

    private GroupCommit NewCommit() => new(0, () => Interlocked.Read(ref _appended), _ =>
    {
        Assert.True(_outcomes.TryTake(out var outcome, Patience), "the test never decided the flush's outcome");
        if (outcome is not null)
        {
            throw outcome;
        }
    });

    private GroupCommit NewReportingCommit() => new(0, () =>
    {
        long target = Interlocked.Read(ref _appended);
        _started.Add(target);
        return target;
    }, _ =>
    {
        Assert.True(_outcomes.TryTake(out var outcome, Patience), "the test never decided the flush's outcome");
        if (outcome is not null)
        {
            throw outcome;
        }
    });

    private long NextStarted()
    {
        Assert.True(_started.TryTake(out long target, Patience), "no flush started");
        return target;
    }

    [Fact]
    public void ConcurrentCommittersShareOneFlush()
    {
        var commit = NewReportingCommit();
        _appended = 1;
        var first = Committer.Start(commit, 1);
        Assert.Equal(1, NextStarted());

        // Eight more appends and their committers while the first flush runs: they all ride the next one.
        _appended = 9;
        var waiting = Enumerable.Range(2, 8).Select(seq => Committer.Start(commit, seq)).ToArray();
        _outcomes.Add(null, TestContext.Current.CancellationToken);
        Assert.Equal(9, NextStarted());
        _outcomes.Add(null, TestContext.Current.CancellationToken);

        Assert.All(waiting.Append(first), c => Assert.True(c.Finished(Patience)));
        Assert.Equal(2, commit.Flushes);
        Assert.Equal(9, commit.Durable);
        Assert.Empty(_started);
    }

    [Fact]
    public void ACommitWaitsForTheFlushInProgressAndItsOwnOnly()
    {
        var commit = NewReportingCommit();
        _appended = 1;
        var a = Committer.Start(commit, 1);
        Assert.Equal(1, NextStarted());

        // B appended after flush 1 started: flush 1 does not cover it, so B does not return with it.
        _appended = 2;
        var b = Committer.Start(commit, 2);
        _outcomes.Add(null, TestContext.Current.CancellationToken);
        Assert.True(a.Finished(Patience));
        Assert.Equal(2, NextStarted());
        Assert.False(b.IsFinished);

        // C arrives during flush 2: B must not wait for C's flush.
        _appended = 3;
        var c = Committer.Start(commit, 3);
        _outcomes.Add(null, TestContext.Current.CancellationToken);
        Assert.True(b.Finished(Patience));
        Assert.Equal(3, NextStarted());
        Assert.False(c.IsFinished);
        _outcomes.Add(null, TestContext.Current.CancellationToken);
        Assert.True(c.Finished(Patience));
        Assert.Equal(3, commit.Flushes);
    }

    [Fact]
    public void AFailedFlushFailsEveryWaiterOfItsGroupAndNoLaterOne()
    {
        var commit = NewReportingCommit();
        _appended = 1;
        var first = Committer.Start(commit, 1);
        Assert.Equal(1, NextStarted());
        _appended = 4;
        var group = new[] { 2L, 3, 4 }.Select(seq => Committer.Start(commit, seq)).ToArray();
        _outcomes.Add(null, TestContext.Current.CancellationToken);
        Assert.True(first.Finished(Patience));
        Assert.Equal(4, NextStarted());

        // Appended while the failing flush runs: not part of its group.
        _appended = 5;
        var later = Committer.Start(commit, 5);
        var failure = new IOException("the disk refused");
        _outcomes.Add(failure, TestContext.Current.CancellationToken);
        foreach (var task in group)
        {
            Assert.True(task.Finished(Patience));
            Assert.Same(failure, task.Error);
        }

        Assert.Equal(5, NextStarted());
        _outcomes.Add(null, TestContext.Current.CancellationToken);
        Assert.True(later.Finished(Patience));
        Assert.Null(later.Error);
        Assert.Equal(5, commit.Durable);

        // A commit after the failure starts a flush of its own.
        _appended = 6;
        _outcomes.Add(null, TestContext.Current.CancellationToken);
        commit.Commit(6);
        Assert.Equal(6, NextStarted());
        Assert.Equal(6, commit.Durable);
        Assert.Equal(4, commit.Flushes);
    }

    [Fact]
    public void ACommitOfWhatIsAlreadyDurableRunsNoFlush()
    {
        var commit = NewCommit();
        _appended = 3;
        _outcomes.Add(null, TestContext.Current.CancellationToken);
        commit.Commit(3);
        commit.Commit(2);
        commit.Commit(3);
        Assert.Equal(1, commit.Flushes);
        Assert.Empty(_outcomes);
    }

    [Fact]
    public void ManyThreadsCommittingTogetherNeedFewerFlushesThanCommits()
    {
        // A real race, not a scripted one: 8 threads, each appending then committing 200 times.
        long flushed = 0;
        var commit = new GroupCommit(0, () => Interlocked.Read(ref _appended), target =>
        {
            Thread.Sleep(1); // as an fsync would take a while
            Interlocked.Exchange(ref flushed, Math.Max(target, Interlocked.Read(ref flushed)));
        });
        int early = 0;
        var threads = Enumerable.Range(0, 8).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                long seq = Interlocked.Increment(ref _appended);
                commit.Commit(seq);
                if (Interlocked.Read(ref flushed) < seq)
                {
                    Interlocked.Increment(ref early);
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        Assert.All(threads, t => Assert.True(t.Join(TimeSpan.FromMinutes(2))));
        Assert.Equal(0, early);
        Assert.Equal(1600, commit.Durable);
        Assert.True(commit.Flushes < 1600, $"{commit.Flushes} flushes for 1600 commits: none was shared");
    }

    /// <summary>One Commit on a thread of its own, so the test can see whether it has returned yet.</summary>
    private sealed class Committer
    {
        private readonly ManualResetEventSlim _done = new();

        private Committer()
        {
        }

        public Exception? Error { get; private set; }

        public bool IsFinished => _done.IsSet;

        public static Committer Start(GroupCommit commit, long sequence)
        {
            var committer = new Committer();
            var thread = new Thread(() =>
            {
                try
                {
                    commit.Commit(sequence);
                }
                catch (IOException ex)
                {
                    committer.Error = ex;
                }
                finally
                {
                    committer._done.Set();
                }
            }) { IsBackground = true };
            thread.Start();
            return committer;
        }

        public bool Finished(TimeSpan patience) => _done.Wait(patience);
    }
}
