<#
.SYNOPSIS
    The module end to end on the example job: start, crash (SIGKILL), resume, stop, resume, list.
.DESCRIPTION
    Needs the module built in out/RunTools (`dotnet build` or `dotnet run --project
    examples/RunTools.Example`, which runs this script itself where pwsh is found).
#>
param([string] $Root = (Join-Path (Get-Location) 'runs'))
$ErrorActionPreference = 'Stop'
$module = Join-Path $PSScriptRoot '../out/RunTools/RunTools.psd1'
Import-Module $module -Force
$pwsh = (Get-Process -Id $PID).Path
$runId = 'nightly-ps-' + (Get-Date -Format 'yyyyMMdd-HHmmss')
$job = Join-Path $PSScriptRoot 'nightly.ps1'
$config = Join-Path $PSScriptRoot 'nightly.yaml'

function Start-Child([string] $Command) {
    $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes("`$ProgressPreference = 'SilentlyContinue'; Import-Module '$module'; $Command"))
    Start-Process $pwsh -ArgumentList '-NoProfile', '-NonInteractive', '-EncodedCommand', $encoded -PassThru `
        -RedirectStandardOutput ([IO.Path]::GetTempFileName()) -RedirectStandardError ([IO.Path]::GetTempFileName())
}
function Wait-Items([int] $Count) {
    while (-not ((Get-Run -RunId $runId -Root $Root -ErrorAction SilentlyContinue).ItemsCompleted -ge $Count)) { Start-Sleep -Milliseconds 50 }
}

Write-Host "`n== PowerShell: Start-Run in a child process, killed (SIGKILL) after 4 uploads" -ForegroundColor Cyan
$child = Start-Child "Start-Run -Name nightly -RunId $runId -ScriptPath '$job' -Config '$config' -Root '$Root' -Parameters @{ DelayMilliseconds = 150 }"
Wait-Items 4
Stop-Process -Id $child.Id -Force
$child.WaitForExit()
Get-Run -RunId $runId -Root $Root | Format-Table

Write-Host "== Resume-Run in a child; Stop-Run from here after 3 more uploads" -ForegroundColor Cyan
$child = Start-Child "Resume-Run -RunId $runId -Root '$Root' -Parameters @{ DelayMilliseconds = 150 }"
Wait-Items 7
Stop-Run -RunId $runId -Root $Root -Reason 'example: maintenance window'
$child.WaitForExit()
Get-Run -RunId $runId -Root $Root | Format-Table

Write-Host "== Get-Run | Where-Object Status -eq Stopped | Resume-Run" -ForegroundColor Cyan
Get-Run -Root $Root | Where-Object { $_.RunId -eq $runId -and $_.Status -eq 'Stopped' } | Resume-Run | Format-Table

Write-Host "== The journal of $runId" -ForegroundColor Cyan
Get-RunEvent -RunId $runId -Root $Root -Type attempt_started, item_resolved, run_* | Format-Table Sequence, Type, Key, @{ n = 'Detail'; e = { $_.Data.reason ?? $_.Data.resolution ?? $_.Data.previous_status } }

Write-Host "== Test-Run, then Export-RunArchive -> Import-RunArchive -> Test-Run -> Compare-Run" -ForegroundColor Cyan
Test-Run -RunId $runId -Root $Root | Format-Table
$archives = Join-Path $Root '../example-archives'
$archive = Export-RunArchive -RunId $runId -Root $Root -DestinationPath $archives -Force
$restored = Import-RunArchive -LiteralPath $archive.FullName -Root (Join-Path $archives 'restored') -Force
Test-Run -InputObject $restored | Format-Table
$differences = @(Compare-Run -ReferencePath (Join-Path $Root $runId) -DifferencePath $restored.Path)
"Compare-Run original vs restored: $($differences.Count) difference(s)"
