# P5: resume of a killed run with many completed items and a stale run.json: time from Resume-Run
# until the first new item's body starts, beside RunTools.Core's Plan of the same run (a copy
# each round, prepared by the harness), in this same pwsh.
param(
    [Parameter(Mandatory)] [string] $Module,
    [Parameter(Mandatory)] [string] $Work,
    [Parameter(Mandatory)] [string] $RunId,
    [int] $Items = 100000,
    [int] $WarmItems = 1000,
    [int] $Rounds = 3
)
. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module $Module

function Invoke-Resume([string] $Root, [int] $N) {
    $global:RtBenchFirstItem = $null
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    $info = Resume-Run -RunId $RunId -Root $Root -Parameters @{ Items = $N }
    $total = Get-Seconds $start
    if ($info.Status -ne 'Completed' -or $info.ItemsCompleted -ne $N + 8) { throw "resume ended $($info.Status) with $($info.ItemsCompleted) items: $($info.Error)" }
    if ($null -eq $global:RtBenchFirstItem) { throw 'no new item ran' }
    [pscustomobject]@{ First = ($global:RtBenchFirstItem - $start) / [double][Diagnostics.Stopwatch]::Frequency; Total = $total }
}
function Invoke-Plan([string] $Root, [int] $N) {
    $runsRoot = [Activator]::CreateInstance((Get-CoreType 'RunTools.Core.RunsRoot'), [object[]]@($Root))
    $run = $runsRoot.OpenRun($RunId)
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    $plan = $run.Plan($true)
    $seconds = Get-Seconds $start
    if ($plan.CompletedItems -ne $N) { throw "Plan found $($plan.CompletedItems) completed items, not $N" }
    $seconds
}

# Warm-up, untimed, on a small run: JIT of Resume-Run, Invoke-RunItem and Plan.
$warmRoot = Join-Path $Work 'warm'
$null = Invoke-Plan $warmRoot $WarmItems
$null = Invoke-Resume $warmRoot $WarmItems

$first = @(); $totals = @(); $plans = @()
for ($r = 0; $r -lt $Rounds; $r++) {
    $root = Join-Path $Work "r$r"
    Settle
    $plans += Invoke-Plan $root $Items
    Settle
    $resume = Invoke-Resume $root $Items
    $first += $resume.First; $totals += $resume.Total
    Say ("  round {0}: first new item after {1:0.000} s (Resume-Run {2:0.000} s in all), Plan {3:0.000} s" -f ($r + 1), $resume.First, $resume.Total, $plans[-1])
}

Write-BenchResult @{ items = $Items; rounds = $Rounds; measured = $first; resume_total = $totals; baseline = $plans }
