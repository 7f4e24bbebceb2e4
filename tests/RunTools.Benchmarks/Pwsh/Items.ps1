# P1 and P2: durable cost per item through Invoke-RunItem (empty body) in a Start-Run script,
# beside a raw append + fsync loop in this same pwsh, interleaved round by round.
param(
    [Parameter(Mandatory)] [string] $Module,
    [Parameter(Mandatory)] [string] $Work,
    [int] $Items = 2000,
    [int] $Rounds = 7,
    [int] $Throttle = 0
)
. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module $Module

if ($Throttle -gt 0 -and -not (Test-ThrottleLimit)) {
    Say 'Invoke-RunItem has no -ThrottleLimit: not measured'
    Write-BenchResult @{ available = $false }
    return
}

$runScript = Join-Path $Work 'items-run.ps1'
$throttleArgument = if ($Throttle -gt 0) { "-ThrottleLimit $Throttle " } else { '' }
Set-Content -LiteralPath $runScript -Encoding utf8NoBOM -Value @"
param(`$N)
`$start = [Diagnostics.Stopwatch]::GetTimestamp()
1..`$N | Invoke-RunItem -Step work -Key { `$_ } $throttleArgument{ }
`$global:RtBenchSeconds = ([Diagnostics.Stopwatch]::GetTimestamp() - `$start) / [double][Diagnostics.Stopwatch]::Frequency
"@
$root = Join-Path $Work 'runs'
$raw = Join-Path $Work 'raw-append.bin'

# Warm-up, untimed: JIT of both sides, and the journal's bytes per item, which the raw lines copy.
$warmItems = [Math]::Min(200, $Items)
$warm = Invoke-BenchRun $root $runScript @{ N = $warmItems }
$itemLines = @([IO.File]::ReadAllLines((Join-Path $warm.Info.Path 'journal.jsonl')) | Where-Object { $_.Contains('"type":"item_') })
$itemBytes = 0
foreach ($line in $itemLines) { $itemBytes += [Text.Encoding]::UTF8.GetByteCount($line) + 1 }
$bytesPerItem = [int][Math]::Round($itemBytes / $warmItems)
$linesPerItem = $itemLines.Count / $warmItems
$null = Invoke-RawAppend $raw $warmItems $bytesPerItem

$measured = @(); $totals = @(); $baseline = @(); $twoFlush = @()
for ($r = 0; $r -lt $Rounds; $r++) {
    Settle
    $run = Invoke-BenchRun $root $runScript @{ N = $Items }
    if ($run.Info.ItemsCompleted -ne $Items) { throw "run completed $($run.Info.ItemsCompleted) items, not $Items" }
    $measured += $run.Inside; $totals += $run.Total
    Settle
    $baseline += Invoke-RawAppend $raw $Items $bytesPerItem 1
    if ($Throttle -eq 0) {
        # What the journal does today: its two lines, each flushed.
        Settle
        $twoFlush += Invoke-RawAppend $raw $Items $bytesPerItem 2
    }
    Say ("  round {0}: Invoke-RunItem {1:0.000} s (Start-Run {2:0.000} s), raw {3:0.000} s" -f ($r + 1), $run.Inside, $run.Total, $baseline[-1])
}

Write-BenchResult @{
    available = $true; items = $Items; rounds = $Rounds; throttle = $Throttle
    bytes_per_item = $bytesPerItem; lines_per_item = $linesPerItem
    measured = $measured; start_run_total = $totals; baseline = $baseline; baseline_two_flushes = $twoFlush
}
