using System.IO;
using System.Linq;

namespace RunTools.Cmdlets.Tests;

public sealed class StartRunTests
{
    [Fact]
    public void PositionalNameAndScriptRunTheScriptAndReturnOnlyTheRunInfo()
    {
        using var s = new ModuleSession();
        string script = s.Script("param($Config, $Who)\nInvoke-RunStep greet { \"hello $Who\" }\n'plain output'");
        var result = s.Run("param($p) Start-Run job $p -Parameters @{ Who = 'you' } -Config @{ retries = 2 } -Verbose", script);

        result.AssertNoErrors();
        var info = result.Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Completed), info.Status);
        Assert.Equal("job", info.Name);
        Assert.Equal(s.Runs, info.Root);
        Assert.Equal(1, info.StepsCompleted);
        Assert.Equal(1, info.Attempt);
        Assert.Null(info.Owner);
        Assert.Equal(info.RunId, info.ToString());
        // The script's output goes to the host and the attempt log, never to the pipeline.
        Assert.Contains("hello you", s.Host.Lines);
        Assert.Contains("plain output", s.Host.Lines);
        Assert.Contains("OUTPUT: plain output", File.ReadAllText(Path.Combine(info.Path!, "logs", "attempt-1.log")));
        Assert.Contains(result.Verbose, v => v.StartsWith("Created run " + info.RunId, System.StringComparison.Ordinal));
    }

    [Fact]
    public void ConfigIsPassedAsConfigAndComesFromHashtableJsonYamlOrPsd1()
    {
        using var s = new ModuleSession();
        string script = s.Script("param($Config)\nInvoke-RunStep read { $Config.model }");
        string json = s.Write("c.json", "{\"model\": \"json\"}");
        string yaml = s.Write("c.yaml", "model: yaml\n");
        string psd1 = s.Write("c.psd1", "@{ model = 'psd1' }");
        var cases = new (string Id, object Config, string Expected)[]
        {
            ("r-hash", new System.Collections.Hashtable { ["model"] = "hash" }, "hash"),
            ("r-json", json, "json"),
            ("r-yaml", yaml, "yaml"),
            ("r-psd1", psd1, "psd1"),
            ("r-file", new FileInfo(json), "json"),
        };
        foreach (var (id, config, expected) in cases)
        {
            var info = s.Run("param($s, $c, $id) Start-Run job $s -Config $c -RunId $id", script, config, id).Single<RunInfo>();
            Assert.Equal(nameof(RunStatus.Completed), info.Status);
            var replayed = s.Ok("param($id) (Get-RunEvent $id -Type step_completed).Count; Get-Content (Join-Path (Get-Run $id).Path config.json) -Raw", id);
            Assert.Contains($"\"{expected}\"", replayed[1].ToString(), System.StringComparison.Ordinal);
        }
    }

    [Fact]
    public void ScriptOutputErrorWarningVerboseAndInformationStreamsAreLogged()
    {
        using var s = new ModuleSession();
        string script = s.Script("Write-Warning 'careful'\nWrite-Error 'soft error' -ErrorAction Continue\nWrite-Verbose 'detail' -Verbose\nWrite-Information 'info line'\n'out'");
        var info = s.Run("param($s) Start-Run job $s", script).Single<RunInfo>();

        Assert.Equal(nameof(RunStatus.Completed), info.Status);
        string log = File.ReadAllText(Path.Combine(info.Path!, "logs", "attempt-1.log"));
        Assert.Contains("WARNING: careful", log);
        Assert.Contains("ERROR: soft error", log);
        Assert.Contains("VERBOSE: detail", log);
        Assert.Contains("INFO: info line", log);
        Assert.Contains("1 non-terminating error(s)", log);
        Assert.Contains("WARNING: careful", s.Host.Lines);
        Assert.Contains("ERROR: soft error", s.Host.Lines);
    }

    [Fact]
    public void AThrowingScriptEndsFailedAndWritesRunFailedWithTheRunInfoAsTarget()
    {
        using var s = new ModuleSession();
        string script = s.Script("Invoke-RunStep ok { 1 }\nthrow 'broken on purpose'");
        var result = s.Run("param($s) Start-Run job $s", script);

        var info = result.Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Failed), info.Status);
        Assert.Contains("broken on purpose", info.Error);
        Assert.Contains("run.ps1:2", info.Error);
        var error = result.SingleError("RunFailed");
        Assert.Same(info, error.TargetObject);
        Assert.Equal(System.Management.Automation.ErrorCategory.NotSpecified, error.CategoryInfo.Category);
    }

    [Fact]
    public void AMissingScriptIsATerminatingScriptNotFound()
    {
        using var s = new ModuleSession();
        var result = s.RunStatement("Start-Run job ./missing.ps1");
        Assert.NotNull(result.Terminating);
        Assert.Empty(result.Output);
        var error = result.SingleError("ScriptNotFound");
        Assert.Equal(s.Combine("missing.ps1"), error.TargetObject);
        Assert.False(Directory.Exists(s.Runs) && Directory.EnumerateDirectories(s.Runs).Any());
    }

    [Theory]
    [InlineData("-RunId 'bad id!'", "InvalidRunId")]
    [InlineData("-Config 42", "InvalidConfig")]
    [InlineData("-Config ./nope.psd1", "InvalidConfig")]
    [InlineData("-Config ./nope.json", "InvalidConfig")]
    [InlineData("-Config ./broken.psd1", "InvalidConfig")]
    public void InvalidArgumentsAreTerminatingErrorsWithStableIds(string arguments, string errorId)
    {
        using var s = new ModuleSession();
        s.Script("'x'");
        s.Write("broken.psd1", "@{ a = ");
        var result = s.RunStatement("Start-Run job ./run.ps1 " + arguments);
        Assert.NotNull(result.Terminating);
        Assert.Empty(result.Output);
        result.SingleError(errorId);
    }

    [Fact]
    public void ARunIdThatExistsIsRunExists()
    {
        using var s = new ModuleSession();
        s.StartCompleted("'x'", runId: "same");
        var result = s.Run("Start-Run job ./run.ps1 -RunId same");
        result.SingleError("RunExists");
    }

    [Fact]
    public void StartRunOrResumeRunInsideARunIsRunNestedAndCreatesNothing()
    {
        using var s = new ModuleSession();
        s.Script("'inner'", "inner.ps1");
        s.StartCompleted("'done'", runId: "earlier");
        string outer = s.Script("Invoke-RunStep nest { Start-Run inner ./inner.ps1 -RunId inner -ErrorAction Stop }", "outer.ps1");
        var result = s.Run("param($s) Start-Run outer $s -RunId outer", outer);

        var info = result.Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Failed), info.Status);
        Assert.Contains("cannot run from inside run 'outer'", info.Error);
        Assert.Contains("RunNested", info.Error);
        // Refused before anything was created: no inner run for a later Start-Run -Resume to resume.
        s.Run("Get-Run inner").SingleError("RunNotFound");

        string resumer = s.Script("Invoke-RunStep nest { Resume-Run -RunId earlier -Force -ErrorAction Stop }", "resumer.ps1");
        var resumed = s.Run("param($s) Start-Run resumer $s -RunId resumer", resumer).Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Failed), resumed.Status);
        Assert.Contains("Resume-Run cannot run from inside run 'resumer'", resumed.Error);
        var earlier = s.Ok("Get-Run -RunId earlier").Select(o => o.BaseObject).Cast<RunInfo>().Single();
        Assert.Equal((nameof(RunStatus.Completed), 1), (earlier.Status, earlier.Attempt));
    }

    [Fact]
    public void WhatIfCreatesNothingAndConfirmNoCreatesNothing()
    {
        using var s = new ModuleSession();
        s.Script("'x'");
        var whatIf = s.Run("Start-Run job ./run.ps1 -WhatIf");
        whatIf.AssertNoErrors();
        Assert.Empty(whatIf.Output);
        Assert.Contains(s.Host.Lines, l => l.Contains("Start run", System.StringComparison.Ordinal));
        Assert.False(Directory.Exists(s.Runs));

        s.Host.Answer(2); // No
        var declined = s.Run("Start-Run job ./run.ps1 -Confirm");
        declined.AssertNoErrors();
        Assert.Empty(declined.Output);
        Assert.Single(s.Host.Prompts);
        Assert.False(Directory.Exists(s.Runs));

        s.Host.Answer(0); // Yes
        Assert.Equal(nameof(RunStatus.Completed), s.Run("Start-Run job ./run.ps1 -Confirm").Single<RunInfo>().Status);
    }

    [Fact]
    public void StepGateParametersRunOnlyTheChosenSteps()
    {
        using var s = new ModuleSession();
        s.Script("'a','b','c','d' | ForEach-Object { Invoke-RunStep $_ { $_ } }");
        var only = s.Run("Start-Run job ./run.ps1 -RunId only -Step b, d").Single<RunInfo>();
        var range = s.Run("Start-Run job ./run.ps1 -RunId range -FromStep b -ToStep c").Single<RunInfo>();

        Assert.Equal(new[] { "b", "d" }, s.Ok("Get-RunEvent only -Type step_completed | ForEach-Object Step").Select(o => o.ToString()));
        Assert.Equal(new[] { "b", "c" }, s.Ok("Get-RunEvent range -Type step_completed | ForEach-Object Step").Select(o => o.ToString()));
        Assert.Equal(2, only.StepsCompleted);
        Assert.Equal(2, range.StepsCompleted);
    }

    [Fact]
    public void TheEnvironmentRootAndTheLocationDecideTheDefaultRoot()
    {
        using var s = new ModuleSession();
        s.Script("'x'");
        var info = s.Run("Set-Location ([IO.Path]::GetTempPath()); Push-Location $args[0]; try { Start-Run job ./run.ps1 -Root ./elsewhere } finally { Pop-Location }", s.Folder).Single<RunInfo>();
        Assert.Equal(s.Combine("elsewhere"), info.Root);
    }
}

public sealed class ResumeRunTests
{
    private const string ItemsScript = "param($Config)\nInvoke-RunStep prep { 'p' }\n'a','b','c' | Invoke-RunItem -Step work -Key { $_ } { \"did $_\"; Add-Content ./effects.txt $_ }\nInvoke-RunStep finish { 'f' }";

    [Fact]
    public void AnInterruptedRunResumesByIdByPipelineAndByPath()
    {
        using var s = new ModuleSession();
        string script = s.Script(ItemsScript);
        CoreRuns.Interrupted(s, script, "by-id", "prep", "x");
        CoreRuns.Interrupted(s, script, "by-input", "prep", "x");
        var byPath = CoreRuns.Interrupted(s, script, "by-path", "prep", "x");

        Assert.Equal(nameof(RunStatus.Interrupted), s.Run("Get-Run by-id").Single<RunInfo>().Status);
        var first = s.Run("Resume-Run by-id").Single<RunInfo>();
        var second = s.Run("Get-Run by-input | Resume-Run").Single<RunInfo>();
        var third = s.Run("param($p) Resume-Run -Path $p", byPath.Path).Single<RunInfo>();
        var fourth = s.Run("[pscustomobject]@{ RunId = 'by-id'; Root = './runs' } | Resume-Run -WarningVariable w; $w").Output;

        foreach (var info in new[] { first, second, third })
        {
            Assert.Equal(nameof(RunStatus.Completed), info.Status);
            Assert.Equal(2, info.Attempt);
            Assert.Equal(3, info.ItemsCompleted);
        }

        // Already completed: a warning and the RunInfo, nothing run.
        Assert.Equal(nameof(RunStatus.Completed), Assert.IsType<RunInfo>(fourth[0].BaseObject).Status);
        Assert.Contains("already completed", fourth[1].ToString());
    }

    [Theory]
    [InlineData("Retry", 3)]
    [InlineData("skip", 2)]
    [InlineData("{ $true }", 2)]
    [InlineData("{ $false }", 3)]
    [InlineData("{ 'Retry' }", 3)]
    [InlineData("{ [RunTools.InDoubtAction]::Skip }", 2)]
    public void InDoubtDecidesWhetherTheItemInFlightRunsAgain(string inDoubt, int effects)
    {
        using var s = new ModuleSession();
        string script = s.Script(ItemsScript);
        var run = CoreRuns.Interrupted(s, script, "r", "prep", "x");
        using (var attempt = run.BeginAttempt(new RunTools.Core.Engine.AttemptOptions()))
        {
            // A second attempt that completed prep and died during item 'b' of work.
            attempt.BeginStep("prep");
            attempt.CompleteStep("prep", null);
            attempt.BeginStep("work");
            attempt.BeginItem("work", "a");
            attempt.CompleteItem("work", "a", null);
            attempt.BeginItem("work", "b");
        }

        var info = s.Run("Resume-Run r -InDoubt " + inDoubt).Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Completed), info.Status);
        // 'a' completed in the earlier attempt; 'c' always runs; 'b' (in doubt) runs again only on Retry.
        Assert.Equal(effects - 1, File.ReadAllLines(s.Combine("effects.txt")).Length);
        Assert.Equal(effects, info.ItemsCompleted);
    }

    [Fact]
    public void InDoubtFailRefusesTheResumeWithInDoubtItems()
    {
        using var s = new ModuleSession();
        string script = s.Script(ItemsScript);
        CoreRuns.Interrupted(s, script, "r", "prep", "x");
        var result = s.Run("Resume-Run r -InDoubt Fail");
        Assert.Empty(result.Output);
        Assert.Equal("r", result.SingleError("InDoubtItems").TargetObject);
        Assert.Equal(nameof(RunStatus.Interrupted), s.Run("Get-Run r").Single<RunInfo>().Status);
    }

    [Theory]
    [InlineData("-InDoubt Maybe", "InvalidArgument")]
    [InlineData("-InDoubt 7", "InvalidArgument")]
    [InlineData("-InDoubt { 'perhaps' }", "RunFailed")]
    public void AnInvalidInDoubtIsReported(string arguments, string errorId)
    {
        using var s = new ModuleSession();
        string script = s.Script(ItemsScript);
        var run = CoreRuns.Interrupted(s, script, "r", "prep", "x");
        using (var attempt = run.BeginAttempt(new RunTools.Core.Engine.AttemptOptions()))
        {
            attempt.BeginStep("work");
            attempt.BeginItem("work", "a");
        }

        var result = s.Run("Resume-Run r " + arguments);
        result.SingleError(errorId);
        if (errorId == "RunFailed")
        {
            Assert.Contains("answered 'perhaps'", result.Single<RunInfo>().Error);
        }
    }

    [Fact]
    public void ConfigAndScriptDriftRefuseTheResumeUnlessForced()
    {
        using var s = new ModuleSession();
        string config = s.Write("c.json", "{\"model\": 1}");
        s.Script("param($Config) Invoke-RunStep a { $Config.model }\nthrow 'stop here'");
        var failed = s.Run("Start-Run job ./run.ps1 -RunId r -Config ./c.json");
        Assert.Equal(nameof(RunStatus.Failed), failed.Single<RunInfo>().Status);

        File.WriteAllText(config, "{\"model\": 2}");
        s.Run("Resume-Run r").SingleError("ConfigDrift");

        File.WriteAllText(config, "{\"model\": 1}");
        s.Script("param($Config) Invoke-RunStep a { $Config.model }\n'changed'");
        s.Run("Resume-Run r").SingleError("ScriptDrift");

        var forced = s.Run("Resume-Run r -Force");
        forced.AssertNoErrors();
        Assert.Equal(nameof(RunStatus.Completed), forced.Single<RunInfo>().Status);
        Assert.Contains(forced.Warnings, w => w.StartsWith("Script drift accepted with -Force", System.StringComparison.Ordinal));
        var drift = s.Run("Get-RunEvent r -Type drift_*").Single<RunEvent>();
        Assert.Equal("drift_accepted", drift.Type);
        Assert.Equal("script", drift.Data["kind"]);
    }

    [Fact]
    public void ConfigAndScriptPathOverrideTheRecordedOnes()
    {
        using var s = new ModuleSession();
        s.Write("c.json", "{\"model\": 1}");
        s.Script("param($Config) Invoke-RunStep a { $Config.model }\nthrow 'stop here'");
        s.Run("Start-Run job ./run.ps1 -RunId r -Config ./c.json");
        File.Delete(s.Combine("c.json"));
        var missingConfig = s.Run("Resume-Run r");
        Assert.Contains("no longer exists", missingConfig.SingleError("InvalidConfig").Exception.Message);

        File.Delete(s.Combine("run.ps1"));
        s.Run("Resume-Run r -Config @{ model = 1 }").SingleError("ScriptNotFound");

        s.Script("param($Config) Invoke-RunStep a { $Config.model }", "fixed.ps1");
        var resumed = s.Run("Resume-Run r -Config @{ model = 1 } -ScriptPath ./fixed.ps1 -Force");
        resumed.AssertNoErrors();
        Assert.Equal(nameof(RunStatus.Completed), resumed.Single<RunInfo>().Status);
    }

    [Fact]
    public void UnknownRunsAndPathsAreNonTerminatingErrorsSoThePipelineGoesOn()
    {
        using var s = new ModuleSession();
        var result = s.Run("Resume-Run nothing; Resume-Run -Path ./not-a-run; Resume-Run 'bad id!'; 'after'");
        Assert.Equal(new[] { "RunNotFound", "RunNotFound", "InvalidRunId" }, result.ErrorIds.Select(i => i.Split(',')[0]));
        Assert.Equal("after", Assert.Single(result.Output).ToString());
        Assert.Equal("nothing", result.Errors[0].TargetObject);
    }

    [Fact]
    public void WhatIfAndConfirmLeaveTheRunAsItWas()
    {
        using var s = new ModuleSession();
        string script = s.Script(ItemsScript);
        CoreRuns.Interrupted(s, script, "r", "prep", "x");
        Assert.Empty(s.Ok("Resume-Run r -WhatIf"));
        s.Host.Answer(2);
        Assert.Empty(s.Ok("Resume-Run r -Confirm"));
        var info = s.Run("Get-Run r").Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Interrupted), info.Status);
        Assert.Equal(1, info.Attempt);
    }

    [Fact]
    public void ResumeRunOfTheRunItIsInsideIsRefusedAsNestedAndTouchesNothing()
    {
        using var s = new ModuleSession();
        s.Script("Invoke-RunStep a { Resume-Run (Get-RunContext).RunId -ErrorAction Stop }");
        var info = s.Run("Start-Run job ./run.ps1 -RunId self").Single<RunInfo>();
        Assert.Equal(nameof(RunStatus.Failed), info.Status);
        Assert.Contains("Resume-Run cannot run from inside run 'self'", info.Error, System.StringComparison.Ordinal);
        Assert.Equal(1, info.Attempt); // refused before it looked at the run: no second attempt began
    }
}
