# D3: several processes on one run in a PostgreSQL database (Join-Run). The same run script, items
# that each wait -SleepMs (I/O-bound), -ThrottleLimit -Throttle in every process: the owner alone
# (baseline) against the owner and -Processes - 1 workers joined with Join-Run. The measure is the
# items step's duration from its step_started to its step_completed in the journal (the workers
# are waiting to be admitted before it starts: each signals it is about to join, and the run's
# first step waits for all of them), rounds alternating baseline and measured.
# The worker processes are started once and join each measured round's run in turn, as a worker
# service on its machine would: the first round (with workers, untimed for the ratio) warms them
# as it warms the owner's process, so both sides are measured warm. The first round's time is
# reported too, as the cost of workers that start cold.
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
function Start-Worker([string[]] $RunIds, [int] $Index) {
    # Serves the runs in turn: waits for the harness's go file (cheap to poll while the owner runs
    # alone), then for the run to be running, says it is about to join, and joins.
    $ids = ($RunIds | ForEach-Object { "'$_'" }) -join ','
    $command = @"
`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'
Import-Module '$Module'
`$env:RUNTOOLS_LOCAL = '$(Join-Path $Work "local-w$Index")'
foreach (`$runId in @($ids)) {
    `$ready = Join-Path '$Work' "ready-`$runId"
    while (-not (Test-Path -LiteralPath `$ready)) { Start-Sleep -Milliseconds 50 }
    while (-not (Get-Run -Root '$Uri' -RunId `$runId -ErrorAction SilentlyContinue | Where-Object Status -eq Running)) { Start-Sleep -Milliseconds 50 }
    `$null = New-Item -ItemType File -Path (Join-Path `$ready '$Index')
    `$null = Join-Run -Root '$Uri' -RunId `$runId
    if (`$LASTEXITCODE -notin 0, 3) { exit `$LASTEXITCODE }
}
exit 0
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
    $info = Start-Run -Name d3 -RunId $runId -ScriptPath $runScript -Root $Uri -Parameters @{ N = $Items; SleepMs = $SleepMs; Throttle = $Throttle; Workers = $Workers; Ready = $ready.FullName }
    if ($info.Status -ne 'Completed' -or $info.ItemsCompleted -ne $Items) { throw "run $runId ended $($info.Status) with $($info.ItemsCompleted) items" }
    foreach ($c in $script:workers) {
        if ($c.Process.HasExited -and $c.Process.ExitCode -ne 0) { throw "a worker failed ($($c.Process.ExitCode)): $($c.Out.Result) $($c.Err.Result)" }
    }
    $events = @(Get-RunEvent -Root $Uri -RunId $runId)
    $started = ($events | Where-Object { $_.Type -eq 'step_started' -and $_.Data.step -eq 'work' } | Select-Object -Last 1).Timestamp
    $ended = ($events | Where-Object { $_.Type -eq 'step_completed' -and $_.Data.step -eq 'work' } | Select-Object -Last 1).Timestamp
    $byWorkers = @($events | Where-Object { $_.Type -eq 'item_completed' -and $_.Data.Contains('worker') }).Count
    [pscustomobject]@{ Seconds = ($ended - $started).TotalSeconds; ByWorkers = $byWorkers }
}

# The rounds with workers are numbered 1, 3, 5, ...: round 1 (workers cold) then each measured one.
$workerRuns = @(for ($r = 0; $r -le $Rounds; $r++) { "d3-$(2 * $r + 1)-w$($Processes - 1)" })
$script:workers = @(for ($i = 1; $i -lt $Processes; $i++) { Start-Worker $workerRuns $i })
try {
    # Warm-up, not in the ratio: the store, the schema, JIT of every process, the workers' first join.
    $cold = Invoke-Round ($Processes - 1)

    $measured = @(); $baseline = @(); $share = @()
    for ($r = 0; $r -lt $Rounds; $r++) {
        Settle
        $baseline += (Invoke-Round 0).Seconds
        Settle
        $m = Invoke-Round ($Processes - 1)
        $measured += $m.Seconds
        $share += $m.ByWorkers / $Items
    }

    foreach ($c in $script:workers) {
        if (-not $c.Process.WaitForExit(120000)) { throw "a worker did not leave: $($c.Err.Result)" }
        if ($c.Process.ExitCode -ne 0) { throw "a worker failed ($($c.Process.ExitCode)): $($c.Out.Result) $($c.Err.Result)" }
    }
}
finally {
    foreach ($c in $script:workers) { if (-not $c.Process.HasExited) { $c.Process.Kill($true) } }
}

Write-BenchResult @{ measured = $measured; baseline = $baseline; worker_share = $share; cold = $cold.Seconds }
