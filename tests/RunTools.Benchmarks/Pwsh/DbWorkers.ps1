# D3: several processes on one run in a PostgreSQL database (Join-Run). The same run script, items
# that each wait -SleepMs (I/O-bound), -ThrottleLimit -Throttle in every process: the owner alone
# (baseline) against the owner and -Processes - 1 workers joined with Join-Run. The measure is the
# items step's duration from its step_started to its step_completed in the journal (the workers
# are waiting to be admitted before it starts: each signals it is about to join, and the run's
# first step waits for all of them), rounds alternating baseline and measured.
param(
    [Parameter(Mandatory)] [string] $Module,
    [Parameter(Mandatory)] [string] $Work,
    [Parameter(Mandatory)] [string] $Uri,
    [int] $Items = 2000,
    [int] $SleepMs = 50,
    [int] $Throttle = 4,
    [int] $Processes = 4,
    [int] $Rounds = 3
)
. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module $Module

$runScript = Join-Path $Work 'db-workers-run.ps1'
Set-Content -LiteralPath $runScript -Encoding utf8NoBOM -Value @'
param([int] $N, [int] $SleepMs, [int] $Throttle, [int] $Workers, [string] $Ready)
Invoke-RunStep ready {
    # Every worker is about to join: give their registrations a moment, then the first item admits them.
    $deadline = [DateTime]::UtcNow.AddSeconds(120)
    while (@(Get-ChildItem -LiteralPath $Ready).Count -lt $Workers) {
        if ([DateTime]::UtcNow -gt $deadline) { throw 'the workers never got ready' }
        Start-Sleep -Milliseconds 50
    }
    Start-Sleep -Milliseconds 500
}
$null = 1..$N | Invoke-RunItem -Step work -Key { $_ } -ThrottleLimit $Throttle { Start-Sleep -Milliseconds $using:SleepMs }
'@

$pwshDll = Join-Path $PSHOME 'pwsh.dll'
$self = [Environment]::ProcessPath
function Start-Worker([string] $RunId, [string] $Ready, [int] $Index) {
    $command = @"
`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'
Import-Module '$Module'
`$env:RUNTOOLS_LOCAL = '$(Join-Path $Work "local-w$Index")'
while (-not (Get-Run -Root '$Uri' -RunId $RunId -ErrorAction SilentlyContinue | Where-Object Status -eq Running)) { Start-Sleep -Milliseconds 50 }
`$null = New-Item -ItemType File -Path (Join-Path '$Ready' '$Index')
`$null = Join-Run -Root '$Uri' -RunId $RunId
exit `$LASTEXITCODE
"@
    $info = [Diagnostics.ProcessStartInfo]::new($self)
    if ([IO.Path]::GetFileNameWithoutExtension($self) -ne 'pwsh') { $info.ArgumentList.Add($pwshDll) }
    foreach ($a in '-NoProfile', '-NonInteractive', '-EncodedCommand', [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($command))) { $info.ArgumentList.Add($a) }
    $info.UseShellExecute = $false
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.Environment['NO_COLOR'] = '1'
    $process = [Diagnostics.Process]::Start($info)
    [pscustomobject]@{ Process = $process; Out = $process.StandardOutput.ReadToEndAsync(); Err = $process.StandardError.ReadToEndAsync() }
}

$script:round = 0
function Invoke-Round([int] $Workers) {
    $script:round++
    $runId = "d3-$($script:round)-w$Workers"
    $ready = New-Item -ItemType Directory (Join-Path $Work "ready-$runId")
    $env:RUNTOOLS_LOCAL = Join-Path $Work 'local-owner'
    $children = @(for ($i = 1; $i -le $Workers; $i++) { Start-Worker $runId $ready.FullName $i })
    $info = Start-Run -Name d3 -RunId $runId -ScriptPath $runScript -Root $Uri -Parameters @{ N = $Items; SleepMs = $SleepMs; Throttle = $Throttle; Workers = $Workers; Ready = $ready.FullName }
    foreach ($c in $children) {
        if (-not $c.Process.WaitForExit(120000)) { $c.Process.Kill($true); throw "a worker did not leave: $($c.Err.Result)" }
        if ($c.Process.ExitCode -notin 0, 3) { throw "a worker failed ($($c.Process.ExitCode)): $($c.Out.Result) $($c.Err.Result)" }
    }
    if ($info.Status -ne 'Completed' -or $info.ItemsCompleted -ne $Items) { throw "run $runId ended $($info.Status) with $($info.ItemsCompleted) items" }
    $events = @(Get-RunEvent -Root $Uri -RunId $runId)
    $started = ($events | Where-Object { $_.Type -eq 'step_started' -and $_.Data.step -eq 'work' } | Select-Object -Last 1).Timestamp
    $ended = ($events | Where-Object { $_.Type -eq 'step_completed' -and $_.Data.step -eq 'work' } | Select-Object -Last 1).Timestamp
    $byWorkers = @($events | Where-Object { $_.Type -eq 'item_completed' -and $_.Data.Contains('worker') }).Count
    [pscustomobject]@{ Seconds = ($ended - $started).TotalSeconds; ByWorkers = $byWorkers }
}

# Warm-up, untimed: the store, the schema, JIT, a worker round trip.
$null = Invoke-Round 1

$measured = @(); $baseline = @(); $share = @()
for ($r = 0; $r -lt $Rounds; $r++) {
    Settle
    $baseline += (Invoke-Round 0).Seconds
    Settle
    $m = Invoke-Round ($Processes - 1)
    $measured += $m.Seconds
    $share += $m.ByWorkers / $Items
}

Write-BenchResult @{ measured = $measured; baseline = $baseline; worker_share = $share }
