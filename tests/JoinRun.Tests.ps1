<#
    Several processes on one run in a PostgreSQL database (Join-Run, docs/multi-machine.md): the
    owner (Start-Run) and workers (Join-Run) in real child pwsh processes on this machine, each
    item done by exactly one of them, a SIGKILLed worker's items taken over by the owner, Stop-Run
    stopping every process. Side effects are counted from files the items write (one file per
    runspace, so no two threads append to one file). The cluster is the one .ci/run starts
    (RUNTOOLS_TEST_PG, RUNTOOLS_TEST_PG_ADMIN); without it the tests are skipped, saying so.
#>
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/JoinRunChildren.psm1') -Force # Start-RunOwner, Start-RunWorker
    $script:haveCluster = $env:RUNTOOLS_TEST_PG -and $env:RUNTOOLS_TEST_PG_ADMIN

    $script:workScript = Join-Path $TestDrive 'work.ps1'
    Set-Content $script:workScript @'
param([int] $Count = 100, [int] $Throttle = 2, [int] $SleepMs = 0, [string] $Effects)
$prepared = Invoke-RunStep prepare { 'prepared' }
$doubled = 1..$Count | Invoke-RunItem -Step work -Key { "k$_" } -ThrottleLimit $Throttle {
    if ($using:SleepMs) { Start-Sleep -Milliseconds $using:SleepMs }
    $file = Join-Path $using:Effects ('{0}-{1}.txt' -f $PID, [runspace]::DefaultRunspace.Id)
    [IO.File]::AppendAllText($file, "k$_`n")
    $_ * 2
}
Invoke-RunStep total { ($doubled | Measure-Object -Sum).Sum }
'@

    # Every side effect: key -> how many times, and process id -> how many.
    function Get-Effects([string] $Folder) {
        $lines = foreach ($file in Get-ChildItem -LiteralPath $Folder -Filter *.txt) {
            foreach ($line in [IO.File]::ReadAllLines($file.FullName)) { [pscustomobject]@{ Key = $line; Process = $file.Name.Split('-')[0] } }
        }
        [pscustomobject]@{
            Total     = @($lines).Count
            PerKey    = @($lines | Group-Object Key)
            Processes = @($lines | Group-Object Process)
        }
    }

}

Describe 'Join-Run: several processes drain one run' {
    BeforeEach {
        if (-not $script:haveCluster) {
            Set-ItResult -Skipped -Because 'RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN are not set (tools/pg-cluster.sh start DIR prints them; .ci/run always sets them)'
        }
    }

    It 'runs each of 10000 items exactly once across an owner and three workers, and the run reads as one' -Tag Slow {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $effects = New-Item -ItemType Directory (Join-Path $TestDrive 'effects-10k')
        $owner = Start-RunOwner $store 'j10k' $script:workScript @{ Count = 10000; Throttle = 2; Effects = $effects.FullName } (Join-Path $TestDrive 'local-owner')
        $workers = 1..3 | ForEach-Object { Start-RunWorker $store 'j10k' (Join-Path $TestDrive "local-w$_") }
        try {
            $ownerExit = Wait-ChildPwsh $owner -TimeoutSec 300
            $workerExits = foreach ($w in $workers) { Wait-ChildPwsh $w -TimeoutSec 120 }
        } finally {
            Stop-ChildPwsh $owner
            foreach ($w in $workers) { Stop-ChildPwsh $w }
        }
        $ownerExit | Should -Be 0 -Because (Get-ChildPwshOutput $owner)
        foreach ($w in $workers) { Wait-ChildPwsh $w | Should -BeIn @(0, 3) -Because (Get-ChildPwshOutput $w) }

        $seen = Get-Effects $effects.FullName
        $seen.Total | Should -Be 10000
        $seen.PerKey.Count | Should -Be 10000
        @($seen.PerKey | Where-Object Count -gt 1).Count | Should -Be 0
        # Workers really took part: at least two processes besides the owner did items.
        $seen.Processes.Count | Should -BeGreaterOrEqual 3

        $check = Invoke-InChild @"
`$run = Get-Run -Root '$($store.Uri)' -RunId j10k
`$events = @(Get-RunEvent -Root '$($store.Uri)' -RunId j10k -Type item_completed)
`$total = Get-RunEvent -Root '$($store.Uri)' -RunId j10k -Type step_completed | Where-Object { `$_.Data.step -eq 'total' }
[pscustomobject]@{
    Status = `$run.Status; Items = `$run.ItemsCompleted; Valid = (Test-Run -Root '$($store.Uri)' -RunId j10k).IsValid
    Completions = `$events.Count; Distinct = @(`$events | ForEach-Object { `$_.Data.key } | Sort-Object -Unique).Count
    ByWorkers = @(`$events | Where-Object { `$_.Data.worker }).Count
} | ConvertTo-Json -Compress
"@
        $check.Status | Should -Be 'Completed'
        $check.Items | Should -Be 10000
        $check.Valid | Should -BeTrue
        $check.Completions | Should -Be 10000
        $check.Distinct | Should -Be 10000
        $check.ByWorkers | Should -BeGreaterThan 0
        $check.ByWorkers | Should -BeLessThan 10000
    }

    It 'takes over the items of a SIGKILLed worker: nothing is lost, and only keys left in doubt run twice' -Tag Slow {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot -Query 'lease=3'
        $effects = New-Item -ItemType Directory (Join-Path $TestDrive 'effects-kill')
        $owner = Start-RunOwner $store 'jkill' $script:workScript @{ Count = 400; Throttle = 2; SleepMs = 40; Effects = $effects.FullName } (Join-Path $TestDrive 'local-kill-owner')
        $victim = Start-RunWorker $store 'jkill' (Join-Path $TestDrive 'local-kill-a')
        $other = Start-RunWorker $store 'jkill' (Join-Path $TestDrive 'local-kill-b')
        try {
            # Kill the worker once it has done some items (its own effects file has lines).
            $deadline = [DateTime]::UtcNow.AddSeconds(90)
            while (-not (Get-ChildItem -LiteralPath $effects.FullName -Filter "$($victim.Id)-*.txt" | Where-Object Length -gt 20)) {
                if ([DateTime]::UtcNow -gt $deadline) { throw "The worker never did an item:`n$(Get-ChildPwshOutput $victim)`n$(Get-ChildPwshOutput $owner)" }
                Start-Sleep -Milliseconds 50
            }
            Stop-ChildPwsh $victim
            $ownerExit = Wait-ChildPwsh $owner -TimeoutSec 180
            $null = Wait-ChildPwsh $other -TimeoutSec 120
        } finally {
            Stop-ChildPwsh $owner; Stop-ChildPwsh $victim; Stop-ChildPwsh $other
        }
        $ownerExit | Should -Be 0 -Because (Get-ChildPwshOutput $owner)

        $seen = Get-Effects $effects.FullName
        $seen.PerKey.Count | Should -Be 400
        $twice = @($seen.PerKey | Where-Object Count -gt 1 | ForEach-Object Name)
        $check = Invoke-InChild @"
`$events = @(Get-RunEvent -Root '$($store.Uri)' -RunId jkill)
`$inDoubt = @(`$events | Where-Object { `$_.Type -eq 'item_started' -and `$_.Data.previous -eq 'in_doubt' } | ForEach-Object { `$_.Data.key })
[pscustomobject]@{
    Status = (Get-Run -Root '$($store.Uri)' -RunId jkill).Status; Valid = (Test-Run -Root '$($store.Uri)' -RunId jkill).IsValid
    Completed = @(`$events | Where-Object Type -eq item_completed | ForEach-Object { `$_.Data.key } | Sort-Object -Unique).Count
    InDoubt = `$inDoubt
} | ConvertTo-Json -Compress
"@
        $check.Status | Should -Be 'Completed'
        $check.Valid | Should -BeTrue
        $check.Completed | Should -Be 400
        # A key runs twice only when the killed worker had started it and the owner retried it in doubt.
        foreach ($key in $twice) { @($check.InDoubt) | Should -Contain $key }
        @($check.InDoubt).Count | Should -BeLessOrEqual 2 # at most the killed worker's items in flight (-ThrottleLimit 2)
    }

    It 'stops the owner and every worker at Stop-Run; a resume finishes the run' -Tag Slow {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $effects = New-Item -ItemType Directory (Join-Path $TestDrive 'effects-stop')
        $owner = Start-RunOwner $store 'jstop' $script:workScript @{ Count = 300; Throttle = 2; SleepMs = 100; Effects = $effects.FullName } (Join-Path $TestDrive 'local-stop-owner')
        $worker = Start-RunWorker $store 'jstop' (Join-Path $TestDrive 'local-stop-w')
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(90)
            while (-not (Get-ChildItem -LiteralPath $effects.FullName -Filter "$($worker.Id)-*.txt")) {
                if ([DateTime]::UtcNow -gt $deadline) { throw "The worker never did an item:`n$(Get-ChildPwshOutput $worker)" }
                Start-Sleep -Milliseconds 50
            }
            $null = Invoke-InChild "Stop-Run -Root '$($store.Uri)' -RunId jstop -Reason 'test'; 'null' "
            $ownerExit = Wait-ChildPwsh $owner -TimeoutSec 60
            $workerExit = Wait-ChildPwsh $worker -TimeoutSec 60
        } finally {
            Stop-ChildPwsh $owner; Stop-ChildPwsh $worker
        }
        $ownerExit | Should -Be 3 -Because (Get-ChildPwshOutput $owner)
        $workerExit | Should -Be 3 -Because (Get-ChildPwshOutput $worker)

        $resumed = Invoke-InChild "`$r = Resume-Run -Root '$($store.Uri)' -RunId jstop -InDoubt Retry; [pscustomobject]@{ Status = `$r.Status; Items = `$r.ItemsCompleted } | ConvertTo-Json -Compress" -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-stop-owner') }
        $resumed.Status | Should -Be 'Completed'
        $resumed.Items | Should -Be 300
        (Get-Effects $effects.FullName).PerKey.Count | Should -Be 300
    }

    It 'loses nothing under random SIGKILLs of workers and a database restart: repeats only for keys recorded in doubt' -Tag Slow {
        if (-not $script:haveCluster) { return }
        # A cluster of its own: restarting the shared one would break the tests running beside this file.
        # lease=15: a dead worker's registration expires after 15 s; owner and workers wait out an outage (3 s down plus crash recovery) within it.
        $store = Start-OwnCluster 'rt-chaos-' -Query 'lease=15'
        $children = [Collections.Generic.List[object]]::new()
        try {
            $effects = New-Item -ItemType Directory (Join-Path $TestDrive 'effects-chaos')
            $count = 3000
            $owner = Start-RunOwner $store 'jchaos' $script:workScript @{ Count = $count; Throttle = 2; SleepMs = 15; Effects = $effects.FullName } (Join-Path $TestDrive 'local-chaos-owner')
            $live = [Collections.Generic.List[object]]::new()
            foreach ($n in 1..3) { $w = Start-RunWorker $store 'jchaos' (Join-Path $TestDrive "local-chaos-$n"); $live.Add($w); $children.Add($w) }
            $kills = 0; $killedWorking = 0; $restarted = $false; $n = 3
            $random = [Random]::new()
            while (-not $owner.Process.HasExited -and $kills -lt 5) {
                Start-Sleep -Milliseconds (1500 + $random.Next(1500))
                $working = @($live | Where-Object { -not $_.Process.HasExited -and (Get-ChildItem -LiteralPath $effects.FullName -Filter "$($_.Id)-*.txt") })
                if ($working.Count -eq 0) { continue }
                $victim = $working[$random.Next($working.Count)]
                Stop-ChildPwsh $victim
                $null = $live.Remove($victim)
                $kills++; $killedWorking++
                $n++; $w = Start-RunWorker $store 'jchaos' (Join-Path $TestDrive "local-chaos-$n"); $live.Add($w); $children.Add($w)
                if ($kills -eq 2 -and -not $restarted) {
                    Restart-OwnCluster $store -DownSeconds 3
                    $restarted = $true
                    $atRestart = (Get-Effects $effects.FullName).Total
                }
            }
            $ownerExit = Wait-ChildPwsh $owner -TimeoutSec 300
            foreach ($w in $live) { $null = Wait-ChildPwsh $w -TimeoutSec 120 }
            $ownerExit | Should -Be 0 -Because (Get-ChildPwshOutput $owner)
            $restarted | Should -BeTrue -Because 'the database must restart while the run goes on'
            $atRestart | Should -BeLessThan $count
            $killedWorking | Should -BeGreaterOrEqual 2 -Because 'kills must land on workers that were doing items'

            $seen = Get-Effects $effects.FullName
            $seen.PerKey.Count | Should -Be $count
            $twice = @($seen.PerKey | Where-Object Count -gt 1 | ForEach-Object Name)
            $check = Invoke-InChild @"
`$events = @(Get-RunEvent -Root '$($store.Uri)' -RunId jchaos)
`$test = Test-Run -Root '$($store.Uri)' -RunId jchaos
[pscustomobject]@{
    Status = (Get-Run -Root '$($store.Uri)' -RunId jchaos).Status; Valid = `$test.IsValid; Problems = @(`$test.Problems | ForEach-Object { "`$_" })
    Completed = @(`$events | Where-Object Type -eq item_completed | ForEach-Object { `$_.Data.key } | Sort-Object -Unique).Count
    InDoubt = @(`$events | Where-Object { `$_.Type -eq 'item_started' -and `$_.Data.previous -eq 'in_doubt' } | ForEach-Object { `$_.Data.key })
    ByWorkers = @(`$events | Where-Object { `$_.Type -eq 'item_completed' -and `$_.Data.worker }).Count
} | ConvertTo-Json -Compress
"@
            $check.Status | Should -Be 'Completed'
            $check.Valid | Should -BeTrue -Because ($check.Problems -join '; ')
            $check.Completed | Should -Be $count
            $check.ByWorkers | Should -BeGreaterThan 0
            foreach ($key in $twice) { @($check.InDoubt) | Should -Contain $key }
            # Kills landed mid-item (a worker's item started and not finished), so the test cannot pass on luck.
            @($check.InDoubt).Count | Should -BeGreaterOrEqual 1 -Because "$kills kills of working workers should leave some item in doubt"
            # At most the items in flight of each killed worker (-ThrottleLimit 2) are in doubt.
            @($check.InDoubt).Count | Should -BeLessOrEqual (2 * $kills)
            Get-Content (Join-Path $store.Dir 'server.log') -Raw | Should -Match 'database system was interrupted|was not properly shut down'
        } finally {
            foreach ($c in $children) { Stop-ChildPwsh $c }
            if ($owner) { Stop-ChildPwsh $owner }
            Stop-OwnCluster $store
        }
    }

    It 'refuses to join a run in a folder (JoinNotSupported) and a run that is not running (RunNotRunning)' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $folder = Join-Path $TestDrive 'folder-runs'
        $effects = New-Item -ItemType Directory (Join-Path $TestDrive 'effects-refuse')
        $out = Invoke-InChild @"
`$null = Start-Run -Name f -RunId f1 -Root '$folder' -ScriptPath '$script:workScript' -Parameters @{ Count = 2; Effects = '$($effects.FullName)' }
`$folderError = try { Join-Run -Root '$folder' -RunId f1 -ErrorAction Stop; 'no error' } catch { `$_.FullyQualifiedErrorId }
`$folderExit = `$LASTEXITCODE
`$null = Start-Run -Name d -RunId d1 -Root '$($store.Uri)' -ScriptPath '$script:workScript' -Parameters @{ Count = 2; Effects = '$($effects.FullName)' }
`$doneError = try { Join-Run -Root '$($store.Uri)' -RunId d1 -ErrorAction Stop; 'no error' } catch { `$_.FullyQualifiedErrorId }
[pscustomobject]@{ Folder = `$folderError; FolderExit = `$folderExit; Done = `$doneError; DoneExit = `$LASTEXITCODE } | ConvertTo-Json -Compress
"@
        $out.Folder | Should -BeLike 'JoinNotSupported,*'
        $out.FolderExit | Should -Be 4
        $out.Done | Should -BeLike 'RunNotRunning,*'
        $out.DoneExit | Should -Be 4
    }
}
