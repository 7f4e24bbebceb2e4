# D2: Get-Run over many runs in a PostgreSQL database beside Get-Run over as many runs in folders,
# in this same pwsh, interleaved.
param(
    [Parameter(Mandatory)] [string] $Module,
    [Parameter(Mandatory)] [string] $Uri,
    [Parameter(Mandatory)] [string] $Root,
    [Parameter(Mandatory)] [int] $Runs,
    [int] $Rounds = 5,
    # Rounds after those of the ratio, reported apart (see List.ps1).
    [int] $LaterRounds = 7
)
. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module $Module

function Invoke-List([string] $From) {
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    $all = @(Get-Run -Root $From)
    $seconds = Get-Seconds $start
    if ($all.Count -ne $Runs) { throw "Get-Run -Root $From returned $($all.Count) runs, not $Runs" }
    $seconds
}
function Invoke-Filtered {
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    $none = @(Get-Run -Root $Uri -Name 'nomatch*')
    $seconds = Get-Seconds $start
    if ($none.Count -ne 0) { throw 'a filter that matches nothing returned runs' }
    $seconds
}

# Warm-up, untimed: the store, the pool, JIT and page cache for both sides.
$null = Invoke-List $Uri; $null = Invoke-List $Root; $null = Invoke-Filtered

$measured = @(); $baseline = @(); $filtered = @()
for ($r = 0; $r -lt $Rounds; $r++) {
    Settle
    $measured += Invoke-List $Uri
    Settle
    $baseline += Invoke-List $Root
    Settle
    $filtered += Invoke-Filtered
    Say ("  round {0}: database {1:0.000} s, folders {2:0.000} s, database -Name nomatch* {3:0.000} s" -f ($r + 1), $measured[-1], $baseline[-1], $filtered[-1])
}

$laterMeasured = @(); $laterBaseline = @()
for ($r = 0; $r -lt $LaterRounds; $r++) {
    Settle
    $laterMeasured += Invoke-List $Uri
    Settle
    $laterBaseline += Invoke-List $Root
}
$measuredText = ($laterMeasured | ForEach-Object { $_.ToString('0.000') }) -join ' '
$baselineText = ($laterBaseline | ForEach-Object { $_.ToString('0.000') }) -join ' '
Say ("  {0} more rounds: database {1} s; folders {2} s" -f $LaterRounds, $measuredText, $baselineText)

Write-BenchResult @{ runs = $Runs; rounds = $Rounds; measured = $measured; baseline = $baseline; filtered = $filtered; later_measured = $laterMeasured; later_baseline = $laterBaseline }
