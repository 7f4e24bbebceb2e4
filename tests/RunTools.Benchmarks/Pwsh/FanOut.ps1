# P3: I/O-bound fan-out, items that each sleep: Invoke-RunItem -ThrottleLimit beside the same
# sequential and beside ForEach-Object -Parallel (no durability), interleaved round by round.
param(
    [Parameter(Mandatory)] [string] $Module,
    [Parameter(Mandatory)] [string] $Work,
    [int] $Items = 1000,
    [int] $SequentialItems = 200,
    [int] $Rounds = 3,
    [int] $Throttle = 8,
    [int] $SleepMs = 50
)
. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module $Module
$available = Test-ThrottleLimit

$runScript = Join-Path $Work 'fanout-run.ps1'
# The sleep is written in as a literal: $using: is only valid in the parallel form.
Set-Content -LiteralPath $runScript -Encoding utf8NoBOM -Value @"
param(`$N, `$Throttle)
`$start = [Diagnostics.Stopwatch]::GetTimestamp()
if (`$Throttle -gt 0) { 1..`$N | Invoke-RunItem -Step work -Key { `$_ } -ThrottleLimit `$Throttle { Start-Sleep -Milliseconds $SleepMs } }
else { 1..`$N | Invoke-RunItem -Step work -Key { `$_ } { Start-Sleep -Milliseconds $SleepMs } }
`$global:RtBenchSeconds = ([Diagnostics.Stopwatch]::GetTimestamp() - `$start) / [double][Diagnostics.Stopwatch]::Frequency
"@
$root = Join-Path $Work 'runs'

function Invoke-ForEachParallel([int] $N) {
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    1..$N | ForEach-Object -ThrottleLimit $Throttle -Parallel { Start-Sleep -Milliseconds 50 }
    Get-Seconds $start
}
if ($SleepMs -ne 50) { throw 'the ForEach-Object -Parallel baseline sleeps 50 ms' }

# Warm-up, untimed.
$null = Invoke-BenchRun $root $runScript @{ N = 16; Throttle = 0 }
if ($available) { $null = Invoke-BenchRun $root $runScript @{ N = 16; Throttle = $Throttle } }
$null = Invoke-ForEachParallel 16

# This process's CPU time per side: a side that should mostly sleep but is CPU-bound shows here.
function Get-Cpu { [Diagnostics.Process]::GetCurrentProcess().TotalProcessorTime.TotalSeconds }

$sequential = @(); $parallel = @(); $parallelTotal = @(); $forEachParallel = @()
$sequentialCpu = @(); $parallelCpu = @(); $forEachParallelCpu = @()
for ($r = 0; $r -lt $Rounds; $r++) {
    Settle
    $cpu = Get-Cpu
    $sequential += (Invoke-BenchRun $root $runScript @{ N = $SequentialItems; Throttle = 0 }).Inside
    $sequentialCpu += (Get-Cpu) - $cpu
    if ($available) {
        Settle
        $cpu = Get-Cpu
        $run = Invoke-BenchRun $root $runScript @{ N = $Items; Throttle = $Throttle }
        $parallelCpu += (Get-Cpu) - $cpu
        if ($run.Info.ItemsCompleted -ne $Items) { throw "run completed $($run.Info.ItemsCompleted) items, not $Items" }
        $parallel += $run.Inside; $parallelTotal += $run.Total
    }
    Settle
    $cpu = Get-Cpu
    $forEachParallel += Invoke-ForEachParallel $Items
    $forEachParallelCpu += (Get-Cpu) - $cpu
    Say ("  round {0}: sequential {1:0.000} s ({2} items), ForEach-Object -Parallel {3:0.000} s ({4} items){5}" -f ($r + 1), $sequential[-1], $SequentialItems, $forEachParallel[-1], $Items,
        $(if ($available) { ", -ThrottleLimit {0:0.000} s" -f $parallel[-1] } else { '' }))
}

Write-BenchResult @{
    available = $available; items = $Items; sequential_items = $SequentialItems; rounds = $Rounds; throttle = $Throttle; sleep_ms = $SleepMs
    parallel = $parallel; parallel_start_run_total = $parallelTotal; sequential = $sequential; foreach_parallel = $forEachParallel
    sequential_cpu = $sequentialCpu; parallel_cpu = $parallelCpu; foreach_parallel_cpu = $forEachParallelCpu
}
