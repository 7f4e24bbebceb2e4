using System;
using System.IO;
using System.Linq;
using RunTools.Core.Engine;
using Xunit;

namespace RunTools.Core.Tests;

public sealed class LockTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ASecondOwnerInTheSameProcessFailsAtOnceNamingTheFirst()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using var first = run.BeginAttempt();
        var started = DateTime.UtcNow;
        var ex = Assert.Throws<RunLockedException>(() => run.BeginAttempt());
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(2));
        Assert.Equal(ErrorIds.RunLocked, ex.ErrorId);
        Assert.Contains($"{Environment.ProcessId}@{Environment.MachineName}", ex.Message, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Running, run.ReadState().Status);
    }

    [Fact]
    public void AnotherProcessOwnsTheRunUntilItIsKilledThenItReadsInterrupted()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using var holder = new Driver("hold", run.Path, "60000");
        holder.Expect("OWNER", TimeSpan.FromSeconds(30));

        var ex = Assert.Throws<RunLockedException>(() => run.BeginAttempt());
        Assert.Equal(holder.Id, ex.Owner!.ProcessId);
        Assert.Contains($"process {holder.Id}@", ex.Message, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Running, run.ReadState().Status);
        Assert.True(run.IsOwned);

        holder.Kill();
        Assert.False(run.IsOwned);
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        using var next = run.BeginAttempt();
        Assert.Equal(2, next.Attempt);
    }

    [Fact]
    public void AStopRequestOnALiveRunReadsAsStopping()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using var holder = new Driver("hold", run.Path, "60000");
        holder.Expect("OWNER", TimeSpan.FromSeconds(30));
        run.RequestStop("maintenance");
        Assert.Equal(RunStatus.Stopping, run.ReadState().Status);
        Assert.Equal("maintenance", run.ReadStopRequest()!.Reason);
    }

    [Fact]
    public void OfProcessesRacingForOneRunExactlyOneBecomesOwner()
    {
        for (int round = 0; round < 3; round++)
        {
            var run = Runs.Create(new RunsRoot(_dir.Path), "race" + round);
            string go = _dir.Combine("go" + round);
            var drivers = Enumerable.Range(0, 4).Select(_ => new Driver("race", run.Path, go)).ToList();
            try
            {
                System.Threading.Thread.Sleep(1500); // let every child start and wait on the go file
                File.WriteAllText(go, "go");
                foreach (var d in drivers)
                {
                    d.WaitForExit(TimeSpan.FromSeconds(60));
                }

                var answers = drivers.Select(d => d.Lines.FirstOrDefault(l => l is "OWNER" or "LOCKED")).ToList();
                Assert.True(answers.Count(a => a == "OWNER") == 1, "answers: " + string.Join(",", answers) + " / " + string.Join(" | ", drivers.SelectMany(d => d.Lines)));
                Assert.Equal(3, answers.Count(a => a == "LOCKED"));
            }
            finally
            {
                drivers.ForEach(d => d.Dispose());
            }
        }
    }

    [Fact]
    public void ReadersTakeNoLock()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        using var attempt = run.BeginAttempt();
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(RunStatus.Running, run.ReadState().Status);
            Assert.NotEmpty(run.ReadEvents().ToList());
        }

        attempt.BeginStep("s");
        attempt.CompleteStep("s", null);
    }
}
