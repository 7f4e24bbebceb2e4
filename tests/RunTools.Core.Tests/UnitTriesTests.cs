using System;
using System.Collections.Generic;
using System.IO;
using RunTools.Core.Engine;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>UnitTries, the one retry loop of steps, items and parallel items, on a real attempt.</summary>
public sealed class UnitTriesTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RunDirectory _run;
    private readonly RunAttempt _attempt;
    private readonly List<string> _log = new();

    public UnitTriesTests()
    {
        _run = Runs.Create(new RunsRoot(_dir.Combine("runs")));
        _attempt = _run.BeginAttempt();
    }

    public void Dispose()
    {
        _attempt.Dispose();
        _dir.Dispose();
    }

    private UnitTries NewTries(int maxTries) =>
        new(_attempt, new RetryPolicy { MaxTries = maxTries, Delay = TimeSpan.Zero }, new Random(1))
        {
            BeginTry = tryNumber =>
            {
                _log.Add($"begin {tryNumber}");
                return true;
            },
            RecordFailure = (error, tryNumber, wait) =>
            {
                _log.Add($"failed {tryNumber} {error.Message} {(wait is null ? "final" : "retry")}");
                return true;
            },
        };

    [Fact]
    public void AFailingUnitIsTriedMaxTriesTimesAndOnlyTheLastFailureIsFinal()
    {
        var outcome = NewTries(3).Run(tryNumber => new IOException($"e{tryNumber}"));
        Assert.Equal(UnitTriesEnd.Failed, outcome.End);
        Assert.Equal(3, outcome.Tries);
        Assert.Equal("e3", outcome.Error!.Message);
        Assert.Equal(new[] { "failed 1 e1 retry", "begin 2", "failed 2 e2 retry", "begin 3", "failed 3 e3 final" }, _log);
    }

    [Fact]
    public void ASecondTryThatSucceedsEndsTheTries()
    {
        var outcome = NewTries(5).Run(tryNumber => tryNumber == 1 ? new IOException("flaky") : null);
        Assert.Equal(UnitTriesEnd.Done, outcome.End);
        Assert.Equal(2, outcome.Tries);
        Assert.Equal(new[] { "failed 1 flaky retry", "begin 2" }, _log);
    }

    [Fact]
    public void AnErrorThatIsNotTransientIsFinalAtOnce()
    {
        var tries = NewTries(5);
        tries.IsTransient = error => error is TimeoutException;
        var outcome = tries.Run(_ => new IOException("permanent"));
        Assert.Equal(UnitTriesEnd.Failed, outcome.End);
        Assert.Equal(1, outcome.Tries);
        Assert.Equal(new[] { "failed 1 permanent final" }, _log);
    }

    [Fact]
    public void AStopRequestDuringTheWaitEndsTheTriesWithTheStop()
    {
        var tries = NewTries(5);
        tries.Waiting = (_, _, _) => _run.RequestStop("test", "UnitTriesTests");
        var outcome = tries.Run(_ => new IOException("failed"));
        Assert.Equal(UnitTriesEnd.Stopped, outcome.End);
        Assert.IsType<RunStoppedException>(outcome.Error);
        Assert.Equal(new[] { "failed 1 failed retry" }, _log);
    }

    [Fact]
    public void AnAbandonedWaitOrARefusedStartEndsTheTriesWithoutAnotherTry()
    {
        var abandoned = NewTries(5);
        abandoned.Abandoned = () => true;
        Assert.Equal(UnitTriesEnd.Interrupted, abandoned.Run(_ => new IOException("x")).End);

        var refused = NewTries(5);
        refused.BeginTry = _ => false;
        var outcome = refused.Run(_ => new IOException("y"));
        Assert.Equal(UnitTriesEnd.NotTried, outcome.End);
        Assert.Equal(1, outcome.Tries);

        var ended = NewTries(5);
        ended.RecordFailure = (_, _, _) => false;
        Assert.Equal(UnitTriesEnd.Ended, ended.Run(_ => new IOException("z")).End);
    }
}
