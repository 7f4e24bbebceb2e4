<#
.SYNOPSIS
    Runs the Pester tier (tests/*.Tests.ps1) against the built module in this fresh pwsh.
.DESCRIPTION
    Called by the xUnit test PesterTier (so `dotnet test` runs every tier) and by build.ps1.
    Writes NUnit XML to -ResultPath and exits non-zero when a test fails.
#>
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $ResultPath,
    # Pester.psd1 of the Pester restored from NuGet (tests/RunTools.Module.Tests restores 5.9.1 and 6.2.0).
    [Parameter(Mandatory)] [string] $PesterPath,
    # Tags whose tests this run leaves out (.ci/run's second, Pester 6 tier leaves out 'Slow': the
    # multi-process tests that take minutes run once, in the first tier).
    [string[]] $ExcludeTag = @()
)
$ErrorActionPreference = 'Stop'
Import-Module $PesterPath -ErrorAction Stop
$env:RUNTOOLS_MODULE_PATH = (Resolve-Path $ModulePath).Path
$configuration = New-PesterConfiguration
$configuration.Run.Path = @(Get-ChildItem -Path $PSScriptRoot -Filter '*.Tests.ps1' | ForEach-Object FullName)
$configuration.Run.PassThru = $true
if ($ExcludeTag) { $configuration.Filter.ExcludeTag = $ExcludeTag }
$configuration.Output.Verbosity = 'Normal'
$configuration.TestResult.Enabled = $true
$configuration.TestResult.OutputFormat = 'NUnitXml'
$configuration.TestResult.OutputPath = $ResultPath
$result = Invoke-Pester -Configuration $configuration
"Pester: $($result.PassedCount) passed, $($result.FailedCount) failed, $($result.SkippedCount) skipped"
exit ([int]($result.FailedCount -gt 0 -or $result.Result -ne 'Passed'))
