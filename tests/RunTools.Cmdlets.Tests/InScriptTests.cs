using System.IO;
using System.Linq;

namespace RunTools.Cmdlets.Tests;

public sealed class InScriptCmdletTests
{
    [Theory]
    [InlineData("Invoke-RunStep a { 1 }")]
    [InlineData("1 | Invoke-RunItem -Key { $_ } -Step s { $_ }")]
    [InlineData("Add-RunArtifact ./x.txt")]
    [InlineData("Get-RunContext")]
    public void OutsideARunEachInScriptCmdletIsATerminatingNotInRun(string command)
    {
        using var s = new ModuleSession();
        s.Write("x.txt", "x");
        var result = s.RunStatement(command);
        Assert.NotNull(result.Terminating);
        Assert.Empty(result.Output);
        result.SingleError("NotInRun");
    }

    [Fact]
    public void GetRunContextDescribesTheRunAndTheAttempt()
    {
        using var s = new ModuleSession();
        s.Script("param($Config)\n$c = Get-RunContext\nInvoke-RunStep look { $i = Get-RunContext; '{0}|{1}|{2}|{3}|{4}|{5}|{6}|{7}' -f $i.RunId, $i.Name, $i.Attempt, $i.IsResume, $i.CurrentStep, $i.Config.model, (Test-Path $i.LogPath), ($i.Path -eq $c.Path) }\n$c.GetType().FullName");
        var info = s.Run("Start-Run ctx ./run.ps1 -RunId c1 -Config @{ model = 'm' }").Single<RunInfo>();
        Assert.Contains("c1|ctx|1|False|look|m|True|True", s.Host.Lines);
        Assert.Contains("RunTools.RunContext", s.Host.Lines);
        Assert.Equal(nameof(RunStatus.Completed), info.Status);
    }

    [Fact]
    public void StepsRunOnceAndReplayTheirRecordedOutputOnResume()
    {
        using var s = new ModuleSession();
        s.Write("fail.flag", "");
        s.Script("$VerbosePreference = 'Continue'\n$v = Invoke-RunStep make { Add-Content ./made.txt x; [pscustomobject]@{ N = 42 }; 'two' }\nif (Test-Path ./fail.flag) { throw 'later failure' }\nInvoke-RunStep use { \"N=$($v[0].N) $($v[1])\" }");
        var failed = s.Run("Start-Run job ./run.ps1 -RunId r");
        Assert.Equal(nameof(RunStatus.Failed), failed.Single<RunInfo>().Status);
        File.Delete(s.Combine("fail.flag"));
        var info = s.Run("Resume-Run r").Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Completed), info.Status);
        Assert.Single(File.ReadAllLines(s.Combine("made.txt")));
        Assert.Contains("N=42 two", s.Host.Lines);
        Assert.Contains(File.ReadAllText(Path.Combine(info.Path!, "logs", "attempt-2.log")).Split('\n'), l => l.Contains("VERBOSE: Step 'make' completed earlier", System.StringComparison.Ordinal));
    }

    [Fact]
    public void AFailingStepFailsTheRunEvenWhenTheScriptCatchesAndTheErrorSaysWhere()
    {
        using var s = new ModuleSession();
        s.Script("try { Invoke-RunStep bad { throw 'bad step' } } catch { 'swallowed' }\nInvoke-RunStep after { 'never' }");
        var result = s.Run("Start-Run job ./run.ps1 -RunId r");
        var info = result.Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Failed), info.Status);
        Assert.Equal("step 'bad' failed: bad step (at " + s.Combine("run.ps1") + ":1)", info.Error);
        Assert.DoesNotContain("swallowed", s.Host.Lines);
        Assert.Equal(0, info.StepsCompleted);
    }

    [Theory]
    [InlineData("Invoke-RunStep a { Invoke-RunStep b { 1 } }", "was started inside step 'a'")]
    [InlineData("Invoke-RunStep 'bad/name' { 1 }", "not a valid step name")]
    [InlineData("Invoke-RunStep out -OutputFile 'missing/*.txt' { 1 }", "step 'out' failed")]
    [InlineData("1 | Invoke-RunItem -Key { $_ } { $_ }", "Invoke-RunItem needs a step")]
    [InlineData("1 | Invoke-RunItem -Key 42 -Step s { $_ }", "-Key takes a script block")]
    [InlineData("1 | Invoke-RunItem -Key { '' } -Step s { $_ }", "is empty")]
    [InlineData("Invoke-RunStep a { 1 }; Invoke-RunStep a { 2 }", "")]
    public void MisusesInsideARunFailTheRunWithAMessage(string body, string expected)
    {
        using var s = new ModuleSession();
        s.Script(body);
        var info = s.Run("Start-Run job ./run.ps1").Output.Select(o => Assert.IsType<RunInfo>(o.BaseObject)).Single();
        if (expected.Length == 0)
        {
            // The same step twice in one run: the second call replays the first.
            Assert.Equal(nameof(RunStatus.Completed), info.Status);
            return;
        }

        Assert.Equal(nameof(RunStatus.Failed), info.Status);
        Assert.Contains(expected, info.Error, System.StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void ItemsRunOncePerKeyAFailedItemIsItemFailedAndRetriedOnResume()
    {
        using var s = new ModuleSession();
        s.Write("fail.flag", "");
        s.Script(
            "$r = Invoke-RunStep work { @([pscustomobject]@{ Id = 'a' }, [pscustomobject]@{ Id = 'b' }, [pscustomobject]@{ Id = 'c' }) | Invoke-RunItem -Key Id -ErrorAction Continue -ErrorVariable ie { if ($_.Id -eq 'b' -and (Test-Path ./fail.flag)) { throw 'b broke' }; Add-Content ./effects.txt $_.Id; \"done $($_.Id)\" }; $ie | ForEach-Object { Write-Host ('ID:' + $_.FullyQualifiedErrorId) } }\n" +
            "Invoke-RunStep report { $r -join ',' }");
        var first = s.Run("Start-Run job ./run.ps1 -RunId r");
        var info = first.Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Failed), info.Status);
        Assert.Equal(2, info.ItemsCompleted);
        Assert.Contains(s.Host.Lines, l => l.Contains("Item 'b' of step 'work' failed: b broke", System.StringComparison.Ordinal));
        Assert.Contains("ID:ItemFailed,RunTools.InvokeRunItemCommand", s.Host.Lines);
        Assert.Contains("ERROR: Item 'b' of step 'work' failed: b broke", File.ReadAllText(Path.Combine(info.Path!, "logs", "attempt-1.log")));

        File.Delete(s.Combine("fail.flag"));
        var resumed = s.Run("Resume-Run r").Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Completed), resumed.Status);
        Assert.Equal(new[] { "a", "c", "b" }, File.ReadAllLines(s.Combine("effects.txt")));
        Assert.Contains("done a,done b,done c", s.Host.Lines);
    }

    [Fact]
    public void ANonTerminatingErrorInAStepFailsItWithItsRealErrorIdAndLineAndTheCallerPreferenceIsKept()
    {
        using var s = new ModuleSession();
        string script = s.Script("Invoke-RunStep a { 'a' }\nInvoke-RunStep copy {\n  Copy-Item ./absent.txt ./copy.txt\n  Add-Content ./after.txt x\n}\nInvoke-RunStep later { Add-Content ./later.txt x }");
        var result = s.Run("param($s) $ErrorActionPreference = 'SilentlyContinue'; Start-Run job $s -ErrorAction Continue; 'PREF=' + $ErrorActionPreference", script);

        var info = Assert.IsType<RunInfo>(result.Output[0].BaseObject);
        Assert.Equal("PREF=SilentlyContinue", result.Output[1].ToString());
        Assert.Equal(nameof(RunStatus.Failed), info.Status);
        Assert.False(File.Exists(s.Combine("after.txt")));
        Assert.False(File.Exists(s.Combine("later.txt")));
        const string where = "(ErrorId: PathNotFound,Microsoft.PowerShell.Commands.CopyItemCommand; at ";
        Assert.StartsWith("step 'copy' failed: Cannot find path", info.Error, System.StringComparison.Ordinal);
        Assert.EndsWith(where + script + ":3)", info.Error, System.StringComparison.Ordinal);
        var stepFailed = s.Ok("param($id) (Get-RunEvent $id -Type step_failed).Data.error", info.RunId);
        Assert.Equal(info.Error, Assert.Single(stepFailed).ToString());

        // RunFailed's inner exception carries the original record: its ErrorId and the failing line.
        var runFailed = result.SingleError("RunFailed");
        Assert.Contains(where + script + ":3). Fix the cause", runFailed.Exception.Message, System.StringComparison.Ordinal);
        var original = Assert.IsAssignableFrom<System.Management.Automation.IContainsErrorRecord>(runFailed.Exception.InnerException).ErrorRecord;
        Assert.Equal("PathNotFound,Microsoft.PowerShell.Commands.CopyItemCommand", original.FullyQualifiedErrorId);
        Assert.Equal(3, original.InvocationInfo.ScriptLineNumber);
        Assert.IsType<System.Management.Automation.ItemNotFoundException>(runFailed.Exception.InnerException!.InnerException);
    }

    [Theory]
    [InlineData("$ErrorActionPreference = 'Continue'\nInvoke-RunStep s { Write-Error 'soft'; Add-Content ./after.txt x }")]
    [InlineData("Invoke-RunStep s { Write-Error 'soft' -ErrorAction Continue; Add-Content ./after.txt x }")]
    [InlineData("Invoke-RunStep s { $ErrorActionPreference = 'Continue'; Write-Error 'soft'; Add-Content ./after.txt x }")]
    public void AScriptOrAStepThatSaysOtherwiseKeepsNonTerminatingErrorsNonTerminating(string body)
    {
        using var s = new ModuleSession();
        s.Script(body);
        var info = s.Run("Start-Run job ./run.ps1").Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Completed), info.Status);
        Assert.True(File.Exists(s.Combine("after.txt")));
        Assert.Contains("ERROR: soft", s.Host.Lines);
    }

    [Fact]
    public void AnItemBodyErrorFailsTheItemWithItsLineAndUnderTheDefaultEndsTheStep()
    {
        using var s = new ModuleSession();
        s.Write("fail.flag", "");
        string script = s.Script("Invoke-RunStep work {\n  'a', 'b', 'c' | Invoke-RunItem -Key { $_ } {\n    if ($_ -eq 'b' -and (Test-Path ./fail.flag)) { Write-Error \"bad $_\" }\n    Add-Content ./effects.txt $_\n  }\n}");
        var info = s.Run("Start-Run job ./run.ps1 -RunId r").Single<RunInfo>();

        Assert.Equal(nameof(RunStatus.Failed), info.Status);
        Assert.Equal(new[] { "a" }, File.ReadAllLines(s.Combine("effects.txt"))); // 'c' waits for the resume
        var itemFailed = Assert.Single(s.Ok("Get-RunEvent r -Type item_failed | ForEach-Object { $_.Data.error }")).ToString();
        Assert.Equal("bad b (ErrorId: Microsoft.PowerShell.Commands.WriteErrorException; at " + script + ":3)", itemFailed);
        Assert.StartsWith("step 'work' failed: Item 'b' of step 'work' failed: " + itemFailed + ". It is retried when the run is resumed.", info.Error, System.StringComparison.Ordinal);

        File.Delete(s.Combine("fail.flag"));
        Assert.Equal(nameof(RunStatus.Completed), s.Run("Resume-Run r").Single<RunInfo>().Status);
        Assert.Equal(new[] { "a", "b", "c" }, File.ReadAllLines(s.Combine("effects.txt")));
    }

    [Fact]
    public void ItemsWithTheirOwnStepCompleteItAndAGatedOutStepRunsNoItems()
    {
        using var s = new ModuleSession();
        s.Script("1..3 | Invoke-RunItem -Step own -Key { \"k$_\" } { Add-Content ./own.txt $_ }\n1..2 | Invoke-RunItem -Step gated -Key { $_ } { Add-Content ./gated.txt $_ }");
        var info = s.Run("Start-Run job ./run.ps1 -Step own").Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Stopped), info.Status); // steps outside the gate are left for a later attempt
        Assert.Equal(1, info.StepsCompleted);
        Assert.Equal(3, File.ReadAllLines(s.Combine("own.txt")).Length);
        Assert.False(File.Exists(s.Combine("gated.txt")));
        Assert.Equal(new[] { "k1", "k2", "k3" }, s.Ok("param($id) Get-RunEvent $id -Type item_completed | ForEach-Object Key", info.RunId).Select(o => o.ToString()));
    }

    [Fact]
    public void AddRunArtifactCopiesOrReferencesAndBindsFromThePipeline()
    {
        using var s = new ModuleSession();
        s.Write("a.txt", "alpha");
        s.Write("b.txt", "bravo");
        s.Script(
            "Invoke-RunStep art {\n" +
            "  $x = Add-RunArtifact ./a.txt\n" +
            "  $y = Get-Item ./b.txt | Add-RunArtifact -Reference\n" +
            "  $z = './a.txt' | Add-RunArtifact -Name 'sub/renamed.txt'\n" +
            "  foreach ($a in $x, $y, $z) { '{0}|{1}|{2}|{3}|{4}' -f $a.GetType().Name, $a.Name, $a.Mode, $a.Size, $a.Step }\n" +
            "  Add-RunArtifact ./missing.txt -ErrorVariable e -ErrorAction SilentlyContinue; 'E1:' + $e[0].FullyQualifiedErrorId\n" +
            "  Add-RunArtifact ./a.txt -Name '../escape' -ErrorVariable f -ErrorAction SilentlyContinue; 'E2:' + $f[0].FullyQualifiedErrorId\n" +
            "}");
        var info = s.Run("Start-Run job ./run.ps1").Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Completed), info.Status);
        Assert.Contains("RunArtifact|a.txt|Copy|5|art", s.Host.Lines);
        Assert.Contains("RunArtifact|b.txt|Reference|5|art", s.Host.Lines);
        Assert.Contains("RunArtifact|sub/renamed.txt|Copy|5|art", s.Host.Lines);
        Assert.Contains("E1:ArtifactNotFound,RunTools.AddRunArtifactCommand", s.Host.Lines);
        Assert.Contains("E2:InvalidArtifactName,RunTools.AddRunArtifactCommand", s.Host.Lines);
        Assert.Equal("alpha", File.ReadAllText(Path.Combine(info.Path!, "artifacts", "sub", "renamed.txt")));
    }
}
