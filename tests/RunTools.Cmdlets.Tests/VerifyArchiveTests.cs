using System.IO;
using System.Linq;
using System.Management.Automation;

namespace RunTools.Cmdlets.Tests;

public sealed class TestRunTests
{
    [Fact]
    public void AValidRunByIdNamePipelineAndPathAndQuietGivesBooleans()
    {
        using var s = new ModuleSession();
        var info = s.StartCompleted("Invoke-RunStep a { 'x' }", name: "checked", runId: "t1");
        var results = s.Ok("Test-Run t1; Test-Run -Name CHECK*; Get-Run t1 | Test-Run; Test-Run -Path $args[0]; [pscustomobject]@{ RunId = 't1'; Root = './runs' } | Test-Run", info.Path)
            .Select(o => Assert.IsType<RunTestResult>(o.BaseObject)).ToList();
        Assert.Equal(5, results.Count);
        Assert.All(results, r =>
        {
            Assert.True(r.IsValid);
            Assert.Equal("t1", r.RunId);
            Assert.Equal(0, r.Errors);
            Assert.True(r.FilesChecked > 0);
        });
        Assert.Equal(true, Assert.Single(s.Ok("Test-Run t1 -Quiet")).BaseObject);
    }

    [Fact]
    public void ATamperedOutputIsAHashMismatchAndQuietSaysFalse()
    {
        using var s = new ModuleSession();
        var info = s.StartCompleted("Invoke-RunStep a { 'recorded output' }", runId: "t1");
        File.AppendAllText(Path.Combine(info.Path!, "steps", "a", "output.clixml"), " ");
        var result = s.Run("Test-Run t1").Single<RunTestResult>();
        Assert.False(result.IsValid);
        var problem = Assert.Single(result.Problems, p => p.Severity == nameof(RunProblemSeverity.Error));
        Assert.Equal(nameof(RunProblemKind.SizeMismatch), problem.Kind);
        Assert.Equal("a", problem.Unit);
        Assert.Equal(false, Assert.Single(s.Ok("Test-Run t1 -Quiet")).BaseObject);
    }

    [Fact]
    public void UnknownRunsAreRunNotFoundPerIdAndANameWithoutMatchIsRunNotFound()
    {
        using var s = new ModuleSession();
        s.StartCompleted("'x'", runId: "t1");
        var result = s.Run("Test-Run t1, nope -Quiet; Test-Run -Name ghost; Test-Run -Name 'gh*'; Test-Run -Path ./nowhere");
        Assert.Equal(true, Assert.Single(result.Output).BaseObject);
        Assert.Equal(new[] { "RunNotFound", "RunNotFound", "RunNotFound" }, result.ErrorIds.Select(i => i.Split(',')[0]));
        Assert.Equal("nope", result.Errors[0].TargetObject);
    }
}

public sealed class CompareRunTests
{
    [Fact]
    public void ComparesByIdByPathAndByTwoPipedRuns()
    {
        using var s = new ModuleSession();
        s.Script("param($Config) Invoke-RunStep a { $Config.model }");
        s.Ok("Start-Run job ./run.ps1 -RunId ref -Config @{ model = 1 }; Start-Run job ./run.ps1 -RunId dif -Config @{ model = 2 }");

        RunDifference[] Rows(string command) => s.Ok(command).Select(o => Assert.IsType<RunDifference>(o.BaseObject)).ToArray();
        var byId = Rows("Compare-Run ref dif -Property Config");
        var row = Assert.Single(byId, r => r.Name == "model");
        Assert.Contains(byId, r => r.Name == "hash");
        Assert.Equal(nameof(RunComparisonProperty.Config), row.Property);
        Assert.Equal("model", row.Name);
        Assert.Equal(nameof(RunDifferenceKind.Changed), row.Kind);
        Assert.Equal("ref", row.ReferenceRunId);
        Assert.Equal("dif", row.DifferenceRunId);
        Assert.Equal("<>", row.SideIndicator);

        Assert.Equal(byId.Length, Rows("Compare-Run -ReferencePath ./runs/ref -DifferencePath ./runs/dif -Property Config").Length);
        Assert.Equal(byId.Length, Rows("Get-Run ref, dif | Compare-Run -Property Config").Length);
        var equal = Rows("Compare-Run ref dif -Property Status, Steps -IncludeEqual");
        Assert.NotEmpty(equal);
        Assert.All(equal, r => Assert.Equal("==", r.SideIndicator));
    }

    [Fact]
    public void PipingOneRunIsInvalidArgumentAndAnUnknownRunIsRunNotFoundBothTerminating()
    {
        using var s = new ModuleSession();
        s.StartCompleted("'x'", runId: "only");
        var one = s.RunStatement("Get-Run only | Compare-Run");
        Assert.NotNull(one.Terminating);
        one.SingleError("InvalidArgument");
        var missing = s.RunStatement("Compare-Run only ghost");
        Assert.NotNull(missing.Terminating);
        missing.SingleError("RunNotFound");
    }
}

public sealed class ArchiveTests
{
    [Fact]
    public void ExportsByIdNameAndPipelineToFileInfoAndImportsByPathLiteralPathAndPipeline()
    {
        using var s = new ModuleSession();
        var a = s.StartCompleted("Invoke-RunStep a { 'A' }", name: "arch", runId: "a1");
        s.StartCompleted("Invoke-RunStep a { 'B' }", name: "other", runId: "b1");

        var exported = s.Ok("Export-RunArchive a1 ./out; Export-RunArchive -Name oth* -DestinationPath ./out; Get-Run a1 | Export-RunArchive -DestinationPath ./single.zip")
            .Select(o => Assert.IsType<FileInfo>(o.BaseObject)).ToList();
        Assert.Equal(new[] { s.Combine("out", "a1.zip"), s.Combine("out", "b1.zip"), s.Combine("single.zip") }, exported.Select(f => f.FullName));
        Assert.All(exported, f => Assert.True(f.Length > 0));

        var imported = s.Ok("Import-RunArchive ./out/*.zip -Root ./restored; Import-RunArchive -LiteralPath ./single.zip -Root ./again; Get-ChildItem ./out/a1.zip | Import-RunArchive -Root ./piped")
            .Select(o => Assert.IsType<RunInfo>(o.BaseObject)).ToList();
        Assert.Equal(new[] { "a1", "b1", "a1", "a1" }, imported.Select(r => r.RunId));
        Assert.Equal(s.Combine("restored"), imported[0].Root);
        Assert.All(imported, r => Assert.Equal(nameof(RunStatus.Completed), r.Status));
        Assert.True(s.Run("Test-Run a1 -Root ./restored -Quiet").Single<bool>());
        Assert.Equal(a.ConfigHash, imported[0].ConfigHash);
    }

    [Fact]
    public void ExportErrorsHaveStableIds()
    {
        using var s = new ModuleSession();
        s.StartCompleted("'x'", runId: "a1");
        s.StartCompleted("'x'", runId: "b1");
        s.Script("throw 'no'", "fail.ps1");
        s.Run("Start-Run job ./fail.ps1 -RunId f1");

        var result = s.Run("Export-RunArchive a1, b1 ./one.zip; Export-RunArchive f1 ./out; Export-RunArchive ghost ./out; Export-RunArchive -Name nomatch ./out");
        Assert.Equal(s.Combine("one.zip"), Assert.IsType<FileInfo>(Assert.Single(result.Output).BaseObject).FullName);
        Assert.Equal(new[] { "ArchiveExists", "ArchiveRunNotCompleted", "RunNotFound", "RunNotFound" }, result.ErrorIds.Select(i => i.Split(',')[0]));

        var again = s.Run("Export-RunArchive a1 ./one.zip");
        again.SingleError("ArchiveExists");
        var forced = s.Run("Export-RunArchive a1, f1 ./forced -Force");
        forced.AssertNoErrors();
        Assert.Equal(2, forced.Output.Count);
    }

    [Fact]
    public void WhatIfAndConfirmWriteNothing()
    {
        using var s = new ModuleSession();
        s.StartCompleted("'x'", runId: "a1");
        s.Ok("Export-RunArchive a1 ./a.zip -WhatIf");
        Assert.False(File.Exists(s.Combine("a.zip")));
        s.Host.Answer(2);
        s.Ok("Export-RunArchive a1 ./a.zip -Confirm");
        Assert.False(File.Exists(s.Combine("a.zip")));
        s.Ok("Export-RunArchive a1 ./a.zip");
        s.Ok("Import-RunArchive ./a.zip -Root ./r -WhatIf");
        Assert.False(Directory.Exists(s.Combine("r", "a1")));
        s.Host.Answer(2);
        s.Ok("Import-RunArchive ./a.zip -Root ./r -Confirm");
        Assert.False(Directory.Exists(s.Combine("r", "a1")));
        Assert.Equal(2, s.Host.Prompts.Count);
    }

    [Fact]
    public void ImportErrorsHaveStableIds()
    {
        using var s = new ModuleSession();
        s.StartCompleted("Invoke-RunStep a { 'x' }", runId: "a1");
        s.Ok("Export-RunArchive a1 ./a.zip");
        File.WriteAllText(s.Combine("junk.zip"), "not a zip");

        var result = s.Run("Import-RunArchive ./a.zip; Import-RunArchive ./missing*.zip; Import-RunArchive ./gone.zip; Import-RunArchive env:PATH; Import-RunArchive ./junk.zip -Root ./j");
        Assert.Empty(result.Output);
        Assert.Equal(new[] { "RunExists", "ArchiveNotFound", "ArchiveNotFound", "ArchiveNotFound", "ArchiveCorrupt" }, result.ErrorIds.Select(i => i.Split(',')[0]));
        Assert.Equal(s.Combine("a.zip"), result.Errors[0].TargetObject);

        var forced = s.Run("Import-RunArchive ./a.zip -Force");
        Assert.Equal("a1", forced.Single<RunInfo>().RunId);
    }
}

public sealed class ConvertToRunTests
{
    [Fact]
    public void ConvertsALegacyCheckpointDirectoryByPathAndFromGetItem()
    {
        using var s = new ModuleSession();
        string dir = CoreRuns.CopyFixture(s, "checkpoint/run_42_10");
        var result = s.Run("param($d) ConvertTo-Run $d -Verbose -WarningAction SilentlyContinue", dir);
        result.AssertNoErrors();
        var info = result.Single<RunInfo>();
        Assert.Equal("run_42_10", info.RunId);
        Assert.True(info.Converted);
        Assert.Equal("checkpoint", info.LegacyFormat);
        Assert.Equal(nameof(RunStatus.Created), info.Status);
        Assert.Contains(result.Verbose, v => v.StartsWith("Converted '", System.StringComparison.Ordinal));

        string other = CoreRuns.CopyFixture(s, "checkpoint/run_7_truncated");
        var piped = s.Run("param($d) Get-Item $d | ConvertTo-Run -Name renamed -LegacyFormat Checkpoint -Config @{ a = 1 } -WarningAction SilentlyContinue", other);
        Assert.Equal("renamed", piped.Single<RunInfo>().Name);
    }

    [Fact]
    public void AGenericDirectoryWithItsScriptIsConvertedAndResumeRunPathConvertsFirst()
    {
        using var s = new ModuleSession();
        string fixtures = Path.GetDirectoryName(CoreRuns.CopyFixture(s, "generic/nightly"))!;
        string script = s.Write("nightly.ps1", File.ReadAllText(CoreRuns.Fixture("generic/nightly.ps1")));
        string dir = Path.Combine(fixtures, "nightly");

        var needsScript = s.Run("param($d) Resume-Run -Path $d", dir);
        needsScript.SingleError("ScriptNotFound");

        var resumed = s.Run("param($d, $s) Resume-Run -Path $d -ScriptPath $s -LegacyFormat Generic -WarningAction SilentlyContinue", dir, script);
        resumed.AssertNoErrors();
        var info = resumed.Single<RunInfo>();
        Assert.True(info.Converted);
        Assert.Equal(nameof(RunStatus.Completed), info.Status);
    }

    [Fact]
    public void ConvertErrorsHaveStableIdsAndWhatIfConvertsNothing()
    {
        using var s = new ModuleSession();
        Directory.CreateDirectory(s.Combine("empty"));
        string dir = CoreRuns.CopyFixture(s, "checkpoint/run_42_10");
        var result = s.Run("param($d) ConvertTo-Run ./empty; ConvertTo-Run $d -ScriptPath ./no-script.ps1; ConvertTo-Run $d -WhatIf", dir);
        Assert.Empty(result.Output);
        Assert.Equal(new[] { "UnknownLegacyFormat", "ScriptNotFound" }, result.ErrorIds.Select(i => i.Split(',')[0]));
        Assert.False(RunDirectory.IsRunDirectory(dir));
    }
}

public sealed class ModuleSurfaceTests
{
    [Fact]
    public void TheManifestExportsExactlyTheCmdletsAndTheirParameterSets()
    {
        using var s = new ModuleSession();
        var names = s.Ok("(Get-Module RunTools).ExportedCmdlets.Keys | Sort-Object").Select(o => o.ToString()).ToArray();
        Assert.Equal(new[]
        {
            "Add-RunArtifact", "Compare-Run", "ConvertTo-Run", "Export-RunArchive", "Get-Run", "Get-RunContext", "Get-RunEvent",
            "Import-RunArchive", "Invoke-RunItem", "Invoke-RunStep", "Join-Run", "Remove-Run", "Resume-Run", "Start-Run", "Stop-Run", "Test-Run", "Wait-Run",
        }, names);
        string Sets(string cmdlet) => string.Join(",", s.Ok($"(Get-Command {cmdlet}).ParameterSets.Name | Sort-Object").Select(o => o.ToString()));
        Assert.Equal("ById,ByInputObject,ByName,ByPath", Sets("Resume-Run"));
        Assert.Equal("ById,ByInputObject,ByName,ByPath", Sets("Stop-Run"));
        Assert.Equal("ById,ByInputObject,ByName,ByPath", Sets("Join-Run"));
        Assert.Equal("ById,ByInputObject,ByName,ByPath", Sets("Test-Run"));
        Assert.Equal("ById,ByInputObject,ByPath", Sets("Compare-Run"));
        Assert.Equal("ById,ByInputObject,ByName,ByPath", Sets("Export-RunArchive"));
        Assert.Equal("ByLiteralPath,ByPath", Sets("Import-RunArchive"));
        Assert.Equal("ByFilter,ById,ByInputObject,ByName,ByPath", Sets("Remove-Run"));
        Assert.Equal("ById,ByInputObject,ByName,ByPath", Sets("Wait-Run"));
        Assert.Equal("ById,ByInputObject,ByName,ByPath", Sets("Get-RunEvent"));
    }

    [Fact]
    public void AmbiguousOrMissingMandatoryParametersAreBindingErrors()
    {
        using var s = new ModuleSession();
        s.RunStatement("Resume-Run -RunId x -Path ./y").SingleError("AmbiguousParameterSet");
        s.RunStatement("Stop-Run -RunId x -Name y").SingleError("AmbiguousParameterSet");
        s.RunStatement("Get-Run -Status Sleeping").SingleError("CannotConvertArgumentNoMessage");
        Assert.NotNull(s.RunStatement("Start-Run -Name x -ScriptPath ''").Terminating);
    }

    [Fact]
    public void TypeAcceleratorsFormatDataAndCompletersWork()
    {
        using var s = new ModuleSession();
        s.StartCompleted("'x'", name: "nightly", runId: "20260101-000000-nightly-abcd");
        s.StartCompleted("'x'", name: "weekly job", runId: "w-1");
        Assert.Equal("Stopped", s.Ok("[RunTools.RunStatus]::Stopped").Single().ToString());
        Assert.Contains("RunId", string.Join("\n", s.Ok("Get-Run | Format-Table | Out-String").Select(o => o.ToString())));

        string[] Complete(string line) => s.Ok("param($l) (TabExpansion2 $l $l.Length).CompletionMatches | ForEach-Object CompletionText", line).Select(o => o.ToString()).ToArray();
        Assert.Equal(new[] { "20260101-000000-nightly-abcd" }, Complete("Get-RunEvent 2026"));
        Assert.Equal(new[] { "w-1" }, Complete("Resume-Run -Root ./runs w"));
        Assert.Equal(new[] { "'weekly job'" }, Complete("Stop-Run -Name wee"));
        Assert.Empty(Complete("Test-Run -Root ./nowhere -RunId 2026"));
    }
}
