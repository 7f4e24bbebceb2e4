# P6: Get-Run over many runs beside reading every run.json raw in this same pwsh, interleaved.
param(
    [Parameter(Mandatory)] [string] $Module,
    [Parameter(Mandatory)] [string] $Root,
    [Parameter(Mandatory)] [int] $Runs,
    [int] $Rounds = 5,
    # Rounds after those of the ratio, reported apart: further into the runtime's tiered-compilation
    # warm-up (instrumented code, then optimized code), which dominates five rounds after one warm-up.
    [int] $LaterRounds = 7
)
. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module $Module

function Invoke-GetRun {
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    $all = @(Get-Run -Root $Root)
    $seconds = Get-Seconds $start
    if ($all.Count -ne $Runs) { throw "Get-Run returned $($all.Count) runs, not $Runs" }
    $seconds
}
function Invoke-RawRead {
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    $bytes = 0
    foreach ($dir in [IO.Directory]::EnumerateDirectories($Root)) {
        $bytes += [IO.File]::ReadAllBytes([IO.Path]::Combine($dir, 'run.json')).Length
    }
    $seconds = Get-Seconds $start
    if ($bytes -eq 0) { throw 'read nothing' }
    $seconds
}
function Invoke-CoreList {
    # What Get-Run calls in Core, for the breakdown.
    $runsRoot = [Activator]::CreateInstance((Get-CoreType 'RunTools.Core.RunsRoot'), [object[]]@($Root))
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    $listings = $runsRoot.ListRuns($null)
    $seconds = Get-Seconds $start
    if ($listings.Count -ne $Runs) { throw "ListRuns returned $($listings.Count) runs" }
    $seconds
}

# Warm-up, untimed: JIT and page cache for every side.
$null = Invoke-GetRun; $null = Invoke-RawRead; $null = Invoke-CoreList

$measured = @(); $baseline = @(); $core = @()
for ($r = 0; $r -lt $Rounds; $r++) {
    Settle
    $measured += Invoke-GetRun
    Settle
    $baseline += Invoke-RawRead
    Settle
    $core += Invoke-CoreList
    Say ("  round {0}: Get-Run {1:0.000} s, raw {2:0.000} s, Core ListRuns {3:0.000} s" -f ($r + 1), $measured[-1], $baseline[-1], $core[-1])
}

$laterMeasured = @(); $laterBaseline = @()
for ($r = 0; $r -lt $LaterRounds; $r++) {
    Settle
    $laterMeasured += Invoke-GetRun
    Settle
    $laterBaseline += Invoke-RawRead
}
$measuredText = ($laterMeasured | ForEach-Object { $_.ToString('0.000') }) -join ' '
$baselineText = ($laterBaseline | ForEach-Object { $_.ToString('0.000') }) -join ' '
Say ("  {0} more rounds: Get-Run {1} s; raw {2} s" -f $LaterRounds, $measuredText, $baselineText)

Write-BenchResult @{ runs = $Runs; rounds = $Rounds; measured = $measured; baseline = $baseline; core_list = $core; later_measured = $laterMeasured; later_baseline = $laterBaseline }
