using System.IO;
using System.Linq;
using System.Management.Automation;

namespace RunTools.Cmdlets.Tests;

public sealed class StopRunTests
{
    [Theory]
    [InlineData("Stop-Run -RunId $c.RunId -Root $root -Reason enough -PassThru")]
    [InlineData("Get-Run $c.RunId | Stop-Run -Reason enough -PassThru")]
    [InlineData("[pscustomobject]@{ RunId = $c.RunId; Root = $root } | Stop-Run -Reason enough -PassThru")]
    [InlineData("Stop-Run -Name 'sto*' -Root $root -Reason enough -PassThru")]
    public void AStopRequestedFromInsideEndsTheRunStoppedAtTheNextStep(string stop)
    {
        using var s = new ModuleSession();
        s.Script("$c = Get-RunContext; $root = Split-Path $c.Path\nInvoke-RunStep one { " + stop + " | ForEach-Object { $_.Status.ToString() } }\nInvoke-RunStep two { 'never' }");
        var info = s.Run("Start-Run stopper ./run.ps1 -RunId r").Single<RunInfo>();

        Assert.Equal(nameof(RunStatus.Stopped), info.Status);
        Assert.Equal(1, info.StepsCompleted);
        Assert.Equal("Stopping", s.Ok("Get-RunEvent r -Type step_completed | ForEach-Object { $_.Data.output.path } | ForEach-Object { Import-Clixml (Join-Path (Get-Run r).Path $_) }").Single().ToString());
        var stopped = s.Run("Get-RunEvent r -Type run_stopped").Single<RunEvent>();
        Assert.Contains("enough", stopped.Data.Values.Cast<object>().Select(v => v?.ToString()));
        // Resuming a Stopped run finishes it.
        Assert.Equal(nameof(RunStatus.Completed), s.Run("Resume-Run r").Single<RunInfo>().Status);
    }

    [Fact]
    public void StoppingARunThatIsNotRunningIsRunNotRunningAndUnknownIdsAreRunNotFound()
    {
        using var s = new ModuleSession();
        var done = s.StartCompleted("'x'", runId: "done");
        var result = s.Run("Stop-Run done, missing; Get-Run done | Stop-Run -PassThru");
        Assert.Equal(new[] { "RunNotRunning", "RunNotFound", "RunNotRunning" }, result.ErrorIds.Select(i => i.Split(',')[0]));
        Assert.Equal("done", result.Errors[0].TargetObject);
        Assert.Equal("missing", result.Errors[1].TargetObject);
        Assert.Empty(result.Output);
        Assert.False(File.Exists(Path.Combine(done.Path!, "stop")));
    }

    [Fact]
    public void JoiningARunInAFolderIsJoinNotSupportedWithExitCode4AndUnknownIdsAreRunNotFound()
    {
        using var s = new ModuleSession();
        var done = s.StartCompleted("'x'", runId: "done");
        var result = s.Run("Join-Run done; $code = $LASTEXITCODE; Join-Run missing; $code; $LASTEXITCODE");
        Assert.Equal(new[] { "JoinNotSupported", "RunNotFound" }, result.ErrorIds.Select(i => i.Split(',')[0]));
        Assert.Equal("done", result.Errors[0].TargetObject);
        Assert.Equal(new object[] { 4, 4 }, result.Output.Select(o => o.BaseObject).ToArray());
        Assert.Single(Directory.GetFiles(Path.Combine(done.Path!, "logs"))); // no attempt of its own
    }

    [Fact]
    public void ANameMatchingNothingRunningIsNotAnError()
    {
        using var s = new ModuleSession();
        s.StartCompleted("'x'", name: "nightly");
        var result = s.Run("Stop-Run -Name nightly, 'none*'");
        result.AssertNoErrors();
        Assert.Empty(result.Output);
    }

    [Fact]
    public void WhatIfAsksNothingOfTheRun()
    {
        using var s = new ModuleSession();
        s.Script("$c = Get-RunContext\nInvoke-RunStep one { Stop-Run $c.RunId -Root (Split-Path $c.Path) -WhatIf }\nInvoke-RunStep two { 'ran' }");
        var info = s.Run("Start-Run job ./run.ps1").Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Completed), info.Status);
        Assert.Equal(2, info.StepsCompleted);
        Assert.Contains(s.Host.Lines, l => l.Contains("Request stop", System.StringComparison.Ordinal));
    }
}

public sealed class GetRunTests
{
    [Fact]
    public void FiltersByIdNameAndStatusWithWildcardsAcrossRoots()
    {
        using var s = new ModuleSession();
        s.StartCompleted("'x'", name: "alpha", runId: "a-1");
        s.StartCompleted("'x'", name: "beta", runId: "b-1");
        s.Script("throw 'no'", "fail.ps1");
        s.Run("Start-Run alpha ./fail.ps1 -RunId a-2");
        s.Script("'x'", "other.ps1");
        s.Ok("Start-Run gamma ./other.ps1 -RunId g-1 -Root ./other");

        string[] Ids(string command) => s.Ok(command).Select(o => Assert.IsType<RunInfo>(o.BaseObject).RunId).OrderBy(i => i).ToArray();
        Assert.Equal(new[] { "a-1", "a-2", "b-1" }, Ids("Get-Run"));
        Assert.Equal(new[] { "a-1", "a-2" }, Ids("Get-Run a-*"));
        Assert.Equal(new[] { "b-1" }, Ids("Get-Run -Name BETA"));
        Assert.Equal(new[] { "a-2" }, Ids("Get-Run -Status Failed"));
        Assert.Equal(new[] { "a-1", "b-1", "g-1" }, Ids("Get-Run -Root ./runs, ./other -Status Completed"));
        Assert.Equal(new[] { "g-1" }, Ids("[pscustomobject]@{ RunId = 'g-1'; Root = './other' } | Get-Run"));
        Assert.Equal(new[] { "a-1" }, Ids("Get-Run a-1 | Get-Run"));
    }

    [Fact]
    public void ALiteralIdThatMatchesNothingIsRunNotFoundAndAnInvalidOneIsInvalidRunId()
    {
        using var s = new ModuleSession();
        s.StartCompleted("'x'", runId: "here");
        var result = s.Run("Get-Run here, gone, 'no way', 'wild*'");
        Assert.Equal("here", result.Single<RunInfo>().RunId);
        Assert.Equal(new[] { "RunNotFound", "InvalidRunId" }, result.ErrorIds.Select(i => i.Split(',')[0]).OrderByDescending(i => i));
        Assert.Equal(ErrorCategory.ObjectNotFound, result.Errors.Single(e => e.FullyQualifiedErrorId.StartsWith("RunNotFound", System.StringComparison.Ordinal)).CategoryInfo.Category);
    }

    [Fact]
    public void AnUnreadableRunIsReportedAndTheOthersAreStillListed()
    {
        using var s = new ModuleSession();
        s.StartCompleted("'x'", runId: "good");
        var bad = s.StartCompleted("'x'", runId: "bad");
        // A snapshot written by a newer RunTools cannot be read by this one.
        string state = Path.Combine(bad.Path!, "run.json");
        File.WriteAllText(state, File.ReadAllText(state).Replace("\"format_version\": 1", "\"format_version\": 2", System.StringComparison.Ordinal).Replace("\"format_version\":1", "\"format_version\":2", System.StringComparison.Ordinal));
        var result = s.Run("Get-Run");
        Assert.Equal("good", result.Single<RunInfo>().RunId);
        Assert.Equal("UnsupportedFormatVersion,RunTools.GetRunCommand", Assert.Single(result.Errors).FullyQualifiedErrorId);
    }
}

public sealed class RemoveRunTests
{
    [Fact]
    public void RemovesByIdByPipelineAndByPropertyName()
    {
        using var s = new ModuleSession();
        var a = s.StartCompleted("'x'", runId: "a");
        var b = s.StartCompleted("'x'", runId: "b");
        var c = s.StartCompleted("'x'", runId: "c");
        var result = s.Run("Remove-Run a -Confirm:$false; Get-Run b | Remove-Run -Confirm:$false; [pscustomobject]@{ RunId = 'c'; Root = './runs' } | Remove-Run -Confirm:$false");
        result.AssertNoErrors();
        Assert.Empty(result.Output);
        Assert.False(Directory.Exists(a.Path));
        Assert.False(Directory.Exists(b.Path));
        Assert.False(Directory.Exists(c.Path));
    }

    [Fact]
    public void ConfirmImpactHighPromptsAndNoKeepsTheRun()
    {
        using var s = new ModuleSession();
        var a = s.StartCompleted("'x'", runId: "a");
        s.Host.Answer(2);
        s.Ok("Remove-Run a");
        Assert.Single(s.Host.Prompts);
        Assert.True(Directory.Exists(a.Path));
        s.Ok("Remove-Run a -WhatIf");
        Assert.True(Directory.Exists(a.Path));
        s.Host.Answer(0);
        s.Ok("Remove-Run a");
        Assert.False(Directory.Exists(a.Path));
    }

    [Fact]
    public void ARunningRunIsNotRemovedAndAnUnknownIdIsRunNotFound()
    {
        using var s = new ModuleSession();
        s.Script("Invoke-RunStep one { Remove-Run (Get-RunContext).RunId -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue; $e[0].FullyQualifiedErrorId }");
        var info = s.Run("Start-Run job ./run.ps1 -RunId busy").Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Completed), info.Status);
        Assert.StartsWith("RunLocked", s.Host.Lines.Single(l => l.Contains("RunLocked", System.StringComparison.Ordinal)), System.StringComparison.Ordinal);
        Assert.True(Directory.Exists(info.Path));

        var missing = s.Run("Remove-Run nothing -Confirm:$false");
        Assert.Equal("nothing", missing.SingleError("RunNotFound").TargetObject);
    }
}

public sealed class GetRunEventTests
{
    [Fact]
    public void ReadsTypedEventsByIdInputObjectAndPathFilteredByTypeStepAndLast()
    {
        using var s = new ModuleSession();
        var info = s.StartCompleted("Invoke-RunStep a { 1 }\nInvoke-RunStep b { 'k1','k2' | Invoke-RunItem -Key { $_ } { $_ } }");

        var all = s.Ok("param($id) Get-RunEvent $id", info.RunId).Select(o => Assert.IsType<RunEvent>(o.BaseObject)).ToList();
        Assert.Equal("run_created", all[0].Type);
        Assert.Equal("run_completed", all[^1].Type);
        Assert.Equal(Enumerable.Range(1, all.Count).Select(i => (long)i), all.Select(e => e.Sequence));
        Assert.All(all, e => Assert.Equal(info.RunId, e.RunId));
        Assert.Equal($"{all[0].Sequence} run_created", all[0].ToString());

        Assert.Equal(all.Count, s.Ok("param($i) $i | Get-RunEvent", info).Count);
        Assert.Equal(all.Count, s.Ok("param($p) Get-RunEvent -Path $p", info.Path).Count);
        Assert.Equal(all.Count, s.Ok("param($i) [pscustomobject]@{ RunId = $i.RunId; Root = $i.Root } | Get-RunEvent", info).Count);

        var items = s.Ok("param($id) Get-RunEvent $id -Type item_* -Step b", info.RunId).Select(o => (RunEvent)o.BaseObject).ToList();
        Assert.Equal(new[] { "item_started", "item_completed", "item_started", "item_completed" }, items.Select(e => e.Type));
        Assert.Equal(new[] { "k1", "k1", "k2", "k2" }, items.Select(e => e.Key));
        var last = s.Ok("param($id) Get-RunEvent $id -Type step_completed -Last 1", info.RunId).Select(o => (RunEvent)o.BaseObject).Single();
        Assert.Equal("b", last.Step);
        Assert.Equal(1, last.Attempt);
    }

    [Fact]
    public void AnUnknownRunIsRunNotFoundAndLastMustBePositive()
    {
        using var s = new ModuleSession();
        Assert.Equal("nope", s.Run("Get-RunEvent nope").SingleError("RunNotFound").TargetObject);
        s.Run("Get-RunEvent -Path ./nowhere").SingleError("RunNotFound");
        s.Run("Get-RunEvent x -Last 0").SingleError("ParameterArgumentValidationError");
    }
}
