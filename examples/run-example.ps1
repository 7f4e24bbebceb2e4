<#
.SYNOPSIS
    The module end to end on the example job: start, crash (SIGKILL), resume, stop, resume from the
    pipeline, journal, Test-Run and an archive round trip; each stage is checked.
.DESCRIPTION
    Needs the module built in out/RunTools. README's first command (`dotnet run -v m --project
    examples/RunTools.Example`) builds it and runs this script in the pinned pwsh.
#>
param([string] $Root = (Join-Path (Get-Location) 'runs'))
$ErrorActionPreference = 'Stop'
$module = Join-Path $PSScriptRoot '../out/RunTools/RunTools.psd1'
Import-Module $module -Force
$runId = 'nightly-ps-' + (Get-Date -Format 'yyyyMMdd-HHmmss')
$job = Join-Path $PSScriptRoot 'nightly.ps1'
$config = Join-Path $PSScriptRoot 'nightly.yaml'
# Starts the real pwsh (not the .NET tool's shim), so the SIGKILL below reaches the run's owner.
Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force

# The example checks what it shows, so the README's first command fails loudly if the module does not behave.
function Assert-Example([bool] $Condition, [string] $What) { if (-not $Condition) { throw "Example check failed: $What" } }
function Start-Child([string] $Command) { Start-ChildPwsh -Command $Command -ModulePath $module }
function Wait-Items([int] $Count, $Child, [int] $TimeoutSec = 60) {
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSec)
    while (-not ((Get-Run -RunId $runId -Root $Root -ErrorAction SilentlyContinue).ItemsCompleted -ge $Count)) {
        if ($Child.Process.HasExited -or [DateTime]::UtcNow -gt $deadline) {
            Stop-ChildPwsh $Child
            throw "The run did not reach $Count uploads within $TimeoutSec s (child exit code $($Child.Process.ExitCode)). The child printed:`n$(Get-ChildPwshOutput $Child)"
        }
        Start-Sleep -Milliseconds 50
    }
}

Write-Host "`n== PowerShell: Start-Run in a child process, killed (SIGKILL) after 4 uploads" -ForegroundColor Cyan
$child = Start-Child "Start-Run -Name nightly -RunId $runId -ScriptPath '$job' -Config '$config' -Root '$Root' -Parameters @{ DelayMilliseconds = 150 }"
Wait-Items 4 $child
Stop-ChildPwsh $child
$run = Get-Run -RunId $runId -Root $Root
$run | Format-Table
Assert-Example ($run.Status -eq 'Interrupted') "a killed run reads as Interrupted, not $($run.Status)"

Write-Host "== Resume-Run in a child; Stop-Run from here after 3 more uploads" -ForegroundColor Cyan
$child = Start-Child "Resume-Run -RunId $runId -Root '$Root' -Parameters @{ DelayMilliseconds = 150 }"
Wait-Items 7 $child
Stop-Run -RunId $runId -Root $Root -Reason 'example: maintenance window'
$null = Wait-ChildPwsh $child -TimeoutSec 60
$run = Get-Run -RunId $runId -Root $Root
$run | Format-Table
Assert-Example ($run.Status -eq 'Stopped') "Stop-Run leaves the run Stopped, not $($run.Status)"

Write-Host "== Get-Run | Where-Object Status -eq Stopped | Resume-Run" -ForegroundColor Cyan
$run = Get-Run -Root $Root | Where-Object { $_.RunId -eq $runId -and $_.Status -eq 'Stopped' } | Resume-Run
$run | Format-Table
Assert-Example ($run.Status -eq 'Completed') "the pipeline resume completes the run, not $($run.Status)"

Write-Host "== The journal of $runId" -ForegroundColor Cyan
Get-RunEvent -RunId $runId -Root $Root -Type attempt_started, item_resolved, run_* | Format-Table Sequence, Type, Key, @{ n = 'Detail'; e = { $_.Data.reason ?? $_.Data.resolution ?? $_.Data.previous_status } }

Write-Host "== Test-Run, then Export-RunArchive -> Import-RunArchive -> Test-Run -> Compare-Run" -ForegroundColor Cyan
$test = Test-Run -RunId $runId -Root $Root
$test | Format-Table
Assert-Example $test.IsValid 'Test-Run finds the completed run valid'
$archives = Join-Path $Root '../example-archives'
$archive = Export-RunArchive -RunId $runId -Root $Root -DestinationPath $archives -Force
$restored = Import-RunArchive -LiteralPath $archive.FullName -Root (Join-Path $archives 'restored') -Force
$test = Test-Run -InputObject $restored
$test | Format-Table
Assert-Example $test.IsValid 'Test-Run finds the restored run valid'
$differences = @(Compare-Run -ReferencePath (Join-Path $Root $runId) -DifferencePath $restored.Path)
"Compare-Run original vs restored: $($differences.Count) difference(s)"
Assert-Example ($differences.Count -eq 0) 'the restored run does not differ from the original'
Write-Host "`nThe example passed: killed, resumed, stopped, resumed from the pipeline, verified and archived." -ForegroundColor Green
