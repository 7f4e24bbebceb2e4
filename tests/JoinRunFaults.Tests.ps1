<#
    The fault paths of Join-Run (docs/multi-machine.md "Faults with workers") with real processes:
    workers whose registration ended while they worked (one SIGSTOPped past it, one expired in the
    database behind its back) and whose late completions are refused, and retries, time limits and
    a final failure on a worker. The owner and the workers are child pwsh processes; the tests
    steer them with marker files in one folder:
      go                the owner's first step waits for it (the test writes it once the workers registered)
      hold-PID          items of process PID wait while it exists
      hold-PID-KEY      item KEY waits in process PID while it exists
      fast              items no longer sleep
      worker-STEP       a worker began an item of STEP (the owner's items of STEP wait for it)
      tried-KEY         KEY had its first try
    and read what they did from it: begin-PID-RS.txt and done-PID-RS.txt (one line per key, one
    file per runspace). The owner prints a CHECK line of what the run recorded (saving a pwsh
    start). Needs the cluster's RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN.
#>
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/JoinRunChildren.psm1') -Force # Start-RunOwner, Start-RunWorker, Get-OwnerCheck
    $script:haveCluster = $env:RUNTOOLS_TEST_PG -and $env:RUNTOOLS_TEST_PG_ADMIN

    # An item: it notes its begin, waits while held, then notes that it did its work.
    $script:heldScript = Join-Path $TestDrive 'held.ps1'
    Set-Content $script:heldScript @'
param([int] $Count = 200, [int] $SleepMs = 50, [string] $Marks, [int] $ArtifactEvery = 0, [int] $Finish = 0)
$null = Invoke-RunStep prepare {
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    while (-not (Test-Path -LiteralPath (Join-Path $Marks 'go'))) {
        if ([DateTime]::UtcNow -gt $deadline) { throw 'no worker registered' }
        Start-Sleep -Milliseconds 50
    }
}
$null = 1..$Count | Invoke-RunItem -Step work -Key { "k$_" } -ThrottleLimit 2 {
    $key = "k$_"
    $tag = '{0}-{1}' -f $PID, [runspace]::DefaultRunspace.Id
    [IO.File]::AppendAllText((Join-Path $using:Marks "begin-$tag.txt"), "$key`n")
    while ((Test-Path -LiteralPath (Join-Path $using:Marks "hold-$PID")) -or (Test-Path -LiteralPath (Join-Path $using:Marks "hold-$PID-$key"))) {
        Start-Sleep -Milliseconds 20
    }
    if (-not (Test-Path -LiteralPath (Join-Path $using:Marks 'fast'))) { Start-Sleep -Milliseconds $using:SleepMs }
    if ($using:ArtifactEvery -gt 0 -and $_ % $using:ArtifactEvery -eq 0) {
        $file = Join-Path $using:Marks "artifact-$key.txt"
        [IO.File]::WriteAllText($file, "$key from $PID")
        $null = Add-RunArtifact $file -Name "$key.txt"
    }
    [IO.File]::AppendAllText((Join-Path $using:Marks "done-$tag.txt"), "$key`n")
    $_
}
if ($Finish) {
    # A last step, run by the owner once the mark 'finish' exists; the workers wait for its output meanwhile.
    $null = Invoke-RunStep finish {
        while (-not (Test-Path -LiteralPath (Join-Path $Marks 'finish'))) { Start-Sleep -Milliseconds 50 }
        'finished'
    }
}
'@

    # Three items-only steps with -MaxTries 2: each key of 'flaky' fails its first try (one by one),
    # each of
    # 'slow' runs past -TimeoutSec on its first, and each of 'final' fails both tries on a worker
    # (and succeeds on the owner, whose pid the step 'prepare' returns to every process). In each
    # step the owner's items wait until the worker has begun one, so that the worker gets some.
    $script:triesScript = Join-Path $TestDrive 'tries.ps1'
    Set-Content $script:triesScript @'
param([string] $Marks)
$ownerPid = Invoke-RunStep prepare {
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    while (-not (Test-Path -LiteralPath (Join-Path $Marks 'go'))) {
        if ([DateTime]::UtcNow -gt $deadline) { throw 'no worker registered' }
        Start-Sleep -Milliseconds 50
    }
    $PID
}
$share = {
    param([string] $Step, [string] $Marks, [int] $OwnerPid)
    $shared = Join-Path $Marks "worker-$Step"
    if ($PID -ne $OwnerPid) { $null = New-Item -ItemType File -Force $shared; return }
    $deadline = [DateTime]::UtcNow.AddSeconds(30)
    while (-not (Test-Path -LiteralPath $shared) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
}.ToString()
# One by one (the run script's runspace), then in parallel (-ThrottleLimit): the two ways a try begins.
$null = 1..8 | Invoke-RunItem -Step flaky -Key { "f$_" } -MaxTries 2 -RetryDelay 0.05 {
    & ([scriptblock]::Create($share)) flaky $Marks $ownerPid
    $tried = Join-Path $Marks "tried-f$_"
    if (-not (Test-Path -LiteralPath $tried)) { $null = New-Item -ItemType File $tried; throw "f$_ fails its first try" }
    [IO.File]::AppendAllText((Join-Path $Marks ('done-{0}-{1}.txt' -f $PID, [runspace]::DefaultRunspace.Id)), "f$_`n")
}
$null = 1..6 | Invoke-RunItem -Step slow -Key { "s$_" } -ThrottleLimit 2 -MaxTries 2 -RetryDelay 0.05 -TimeoutSec 2 {
    $tried = Join-Path $using:Marks "tried-s$_"
    if (-not (Test-Path -LiteralPath $tried)) {
        $null = New-Item -ItemType File $tried
        & ([scriptblock]::Create($using:share)) slow $using:Marks $using:ownerPid
        Start-Sleep -Seconds 60
    }
    [IO.File]::AppendAllText((Join-Path $using:Marks ('done-{0}-{1}.txt' -f $PID, [runspace]::DefaultRunspace.Id)), "s$_`n")
}
$null = 1..6 | Invoke-RunItem -Step final -Key { "x$_" } -ThrottleLimit 2 -MaxTries 2 -RetryDelay 0.05 {
    & ([scriptblock]::Create($using:share)) final $using:Marks $using:ownerPid
    if ($PID -ne $using:ownerPid) { throw "x$_ fails on a worker" }
    [IO.File]::AppendAllText((Join-Path $using:Marks ('done-{0}-{1}.txt' -f $PID, [runspace]::DefaultRunspace.Id)), "x$_`n")
}
'@

    # Lines of the marker files named PREFIX-*.txt, as Key and Process.
    function Get-Marks([string] $Folder, [string] $Prefix) {
        foreach ($file in Get-ChildItem -LiteralPath $Folder -Filter "$Prefix-*.txt") {
            foreach ($line in [IO.File]::ReadAllLines($file.FullName)) { [pscustomobject]@{ Key = $line; Process = [int]$file.Name.Split('-')[1] } }
        }
    }

    # Lets the owner's first step end once a worker is registered, so that the owner admits it at its first item.
    function Open-Gate($Store, [string] $Marks, [object[]] $Workers) {
        Wait-For -What 'the workers to register' -Children $Workers {
            # The owner creates the store's tables: until then there is no worker either.
            $admin = if ($Store.PSObject.Properties['Admin']) { $Store.Admin } else { $env:RUNTOOLS_TEST_PG_ADMIN } # a cluster of the test's own, or the shared one
            try { [int](Invoke-AdminSql "SELECT count(*) FROM $($Store.Schema).workers" -Admin $admin) -ge $Workers.Count } catch { $false }
        }
        New-Item -ItemType File (Join-Path $Marks 'go') | Out-Null
    }

    # Polls -Condition; on timeout fails naming -What with what the -Children printed (read only
    # then: reading it waits for the child) and their attempt logs (under $TestDrive).
    function Wait-For([scriptblock] $Condition, [string] $What, [object[]] $Children = @(), [int] $TimeoutSec = 60) {
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSec)
        while (-not (& $Condition)) {
            if ([DateTime]::UtcNow -gt $deadline) {
                foreach ($child in $Children) { Stop-ChildPwsh $child }
                $logs = Get-ChildItem -LiteralPath $TestDrive -Recurse -Filter 'attempt-*.log' | ForEach-Object { "$($_.Name):`n$(Get-Content -LiteralPath $_.FullName -Raw)" }
                throw "Timed out waiting for $What. The processes printed:`n$(($Children | ForEach-Object { Get-ChildPwshOutput $_ }) -join "`n---`n")`nTheir logs:`n$($logs -join "`n")"
            }
            Start-Sleep -Milliseconds 50
        }
    }

    function Send-Signal([string] $Signal, [int] $ProcessId) {
        & kill "-$Signal" $ProcessId
        if ($LASTEXITCODE -ne 0) { throw "kill -$Signal $ProcessId failed" }
    }
}

Describe 'Join-Run: faults on a worker' {
    BeforeEach {
        if (-not $script:haveCluster) {
            Set-ItResult -Skipped -Because 'RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN are not set (tools/pg-cluster.sh start DIR prints them; .ci/run always sets them)'
        }
    }

    It 'refuses the late completions of a worker stopped past its registration and of one whose registration expired unseen: NotOwner, and each item counts once' -Tag Slow {
        if (-not $script:haveCluster) { return }
        # The owner and the stopped worker: lease=3, so a 3 s pause expires the worker's registration.
        # The other worker: lease=90, so its next heartbeat (every 30 s) is far off when the test
        # expires its registration in the database: it cannot know, and only the claim fence on its
        # event insert can refuse what it records next.
        $store = New-StoreRoot -Query 'lease=3'
        $marks = (New-Item -ItemType Directory (Join-Path $TestDrive 'marks-late')).FullName
        $check = @'
$events = @(Get-RunEvent -Root $root -RunId $runId)
$run = Get-Run -Root $root -RunId $runId
$test = Test-Run -Root $root -RunId $runId
$completed = @($events | Where-Object Type -eq item_completed)
[pscustomobject]@{
    Status = $run.Status; Items = $run.ItemsCompleted; Valid = $test.IsValid; Problems = @($test.Problems | ForEach-Object { "$_" })
    Completions = @($completed | ForEach-Object { [pscustomobject]@{ Key = $_.Data.key; Worker = $_.Data.worker } })
    InDoubt = @($events | Where-Object { $_.Type -eq 'item_started' -and $_.Data.previous -eq 'in_doubt' } | ForEach-Object { $_.Data.key })
} | ConvertTo-Json -Compress -Depth 4
'@
        $owner = Start-RunOwner $store 'jlate' $script:heldScript @{ Count = 200; SleepMs = 50; Marks = $marks } (Join-Path $TestDrive 'local-late-owner') $check
        $paused = Start-RunWorker $store 'jlate' (Join-Path $TestDrive 'local-late-paused')
        $unaware = Start-RunWorker $store 'jlate' (Join-Path $TestDrive 'local-late-unaware') -Query 'lease=90'
        $workers = @($paused, $unaware)
        $stopped = $false
        try {
            # The workers' items wait in their work until the test lets them go.
            foreach ($w in $workers) { New-Item -ItemType File (Join-Path $marks "hold-$($w.Id)") | Out-Null }
            Open-Gate $store $marks $workers
            Wait-For -What 'both workers to begin an item' -Children (@($owner) + $workers) {
                $begun = @(Get-Marks $marks begin | ForEach-Object Process)
                $paused.Id -in $begun -and $unaware.Id -in $begun
            }
            Start-Sleep -Milliseconds 300 # their second runspaces may begin one too
            # The owner's next items wait too, so that it reaches the end of its call (where it takes
            # items over) only once both registrations ended, and takes both workers' items at once:
            # it runs the items of one takeover before it looks again.
            $ownerHold = New-Item -ItemType File (Join-Path $marks "hold-$($owner.Id)")

            Send-Signal STOP $paused.Id
            $stopped = $true
            # Far from the unaware worker's next heartbeat (a third of 90 s after its last), end its registration.
            $workersTable = "$($store.Schema).workers"
            Wait-For -What 'the unaware worker to be 20 s from its next heartbeat' -Children $workers {
                [double](Invoke-AdminSql "SELECT extract(epoch FROM expires_at - now()) FROM $workersTable WHERE pid = $($unaware.Id)") -gt 80
            }
            $null = Invoke-AdminSql "UPDATE $workersTable SET expires_at = now() - interval '1 second' WHERE pid = $($unaware.Id)"
            # The stopped worker's registration expires by itself.
            Wait-For -What "the stopped worker's registration to expire" -Children $workers {
                [int](Invoke-AdminSql "SELECT count(*) FROM $workersTable WHERE pid = $($paused.Id) AND expires_at > now()") -eq 0
            }

            $held = @{}
            foreach ($w in $workers) { $held[$w.Id] = @(Get-Marks $marks begin | Where-Object Process -eq $w.Id | ForEach-Object Key) }
            $allHeld = @($held.Values | ForEach-Object { $_ })
            # The owner's own run of one key of each worker (in doubt, once it took them over) waits
            # too, in its two runspaces, so those workers' late completions come while the owner has
            # not completed them.
            $ownerHeld = @(foreach ($w in $workers) { $held[$w.Id][0] })
            foreach ($key in $ownerHeld) { New-Item -ItemType File (Join-Path $marks "hold-$($owner.Id)-$key") | Out-Null }
            Remove-Item (Join-Path $marks "hold-$($paused.Id)")
            New-Item -ItemType File (Join-Path $marks 'fast') | Out-Null
            Remove-Item $ownerHold

            # The owner takes the items over at the end of its call and runs them.
            Wait-For -What "the owner to run the workers' items $ownerHeld" -Children (@($owner) + $workers) {
                $begun = @(Get-Marks $marks begin | Where-Object Process -eq $owner.Id | ForEach-Object Key)
                @($ownerHeld | Where-Object { $_ -notin $begun }).Count -eq 0
            }
            Send-Signal CONT $paused.Id
            $stopped = $false
            Remove-Item (Join-Path $marks "hold-$($unaware.Id)")
            $exits = foreach ($w in $workers) { Wait-ChildPwsh $w -TimeoutSec 60 }
            # Only now may the owner complete them.
            foreach ($key in $ownerHeld) { Remove-Item (Join-Path $marks "hold-$($owner.Id)-$key") }
            $ownerExit = Wait-ChildPwsh $owner -TimeoutSec 120
        } finally {
            if ($stopped) { & kill -CONT $paused.Id }
            Stop-ChildPwsh $owner
            foreach ($w in $workers) { Stop-ChildPwsh $w }
        }
        $ownerExit | Should -Be 0 -Because (Get-ChildPwshOutput $owner)
        $pausedOutput = Get-ChildPwshOutput $paused
        $unawareOutput = Get-ChildPwshOutput $unaware
        # Both went on after their registration ended: they did the held items' work, then could not record it.
        foreach ($w in $workers) {
            $done = @(Get-Marks $marks done | Where-Object Process -eq $w.Id | ForEach-Object Key)
            foreach ($key in $held[$w.Id]) { $done | Should -Contain $key }
        }
        # Both stop with NotOwner and exit code 4 (docs/cmdlets/Join-Run.md): their part does not count.
        $exits[0] | Should -Be 4 -Because $pausedOutput
        $pausedOutput | Should -Match 'WORKER ERROR NotOwner,.*expired'
        $exits[1] | Should -Be 4 -Because $unawareOutput
        # The unaware worker learnt it from the refused insert (the claim fence), naming the item.
        $unawareOutput | Should -Match "WORKER ERROR NotOwner,.*no longer holds item\(s\) ($($held[$unaware.Id] -join '|'))"

        $result = Get-OwnerCheck $owner
        $result.Status | Should -Be 'Completed'
        $result.Valid | Should -BeTrue -Because ($result.Problems -join '; ')
        $result.Items | Should -Be 200
        @($result.Completions).Count | Should -Be 200
        @($result.Completions | Group-Object Key).Count | Should -Be 200
        # Each held key completed once, by the owner (no worker member): the late completions were refused.
        foreach ($key in $allHeld) {
            $completion = @($result.Completions | Where-Object Key -eq $key)
            $completion.Count | Should -Be 1
            $completion[0].Worker | Should -BeNullOrEmpty
            @($result.InDoubt) | Should -Contain $key
        }
        # A key's work was done twice only when it was in doubt.
        $twice = @(Get-Marks $marks done | Group-Object Key | Where-Object Count -gt 1 | ForEach-Object Name)
        foreach ($key in $twice) { @($result.InDoubt) | Should -Contain $key }
        @(Get-Marks $marks done | Group-Object Key).Count | Should -Be 200
    }

    It 'retries and times out items on a worker as on one process, each try journaled with the worker, and a final failure on a worker fails the run' -Tag Slow {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $marks = (New-Item -ItemType Directory (Join-Path $TestDrive 'marks-tries')).FullName
        $check = @'
$run = Get-Run -Root $root -RunId $runId
[pscustomobject]@{
    Status = $run.Status; Completed = $run.ItemsCompleted; Failed = $run.ItemsFailed; Error = $run.LastError
    Valid = (Test-Run -Root $root -RunId $runId).IsValid
    Events = @(Get-RunEvent -Root $root -RunId $runId | Where-Object Type -like 'item_*' | ForEach-Object {
        [pscustomobject]@{ Type = $_.Type; Step = $_.Data.step; Key = $_.Data.key; Worker = $_.Data.worker; Try = $_.Data.try
            ErrorId = $_.Data.error_id; Error = $_.Data.error; TimedOut = $_.Data.timed_out; RetryIn = $_.Data.retry_in_ms }
    })
} | ConvertTo-Json -Compress -Depth 4
'@
        $owner = Start-RunOwner $store 'jtries' $script:triesScript @{ Marks = $marks } (Join-Path $TestDrive 'local-tries-owner') $check
        $worker = Start-RunWorker $store 'jtries' (Join-Path $TestDrive 'local-tries-w')
        try {
            Open-Gate $store $marks @($worker)
            $ownerExit = Wait-ChildPwsh $owner -TimeoutSec 120
            $workerExit = Wait-ChildPwsh $worker -TimeoutSec 60
        } finally {
            Stop-ChildPwsh $owner; Stop-ChildPwsh $worker
        }
        $ownerOutput = Get-ChildPwshOutput $owner
        $workerOutput = Get-ChildPwshOutput $worker
        $result = Get-OwnerCheck $owner
        $events = @($result.Events)
        $byWorker = @($events | Where-Object Worker)

        # Retries: every key of 'flaky' failed once and completed on its second try, in the process
        # that ran its first; at least one of them on the worker.
        foreach ($n in 1..8) {
            $tries = @($events | Where-Object Key -eq "f$n")
            ($tries | ForEach-Object Type) -join ',' | Should -Be 'item_started,item_failed,item_started,item_completed' -Because "f$n"
            @($tries | ForEach-Object { "$($_.Worker)" } | Sort-Object -Unique).Count | Should -Be 1 -Because "all tries of f$n ran in one process"
            $tries[1].RetryIn | Should -BeGreaterThan 0
            $tries[1].Error | Should -Match "f$n fails its first try"
            $tries[2].Try | Should -Be 2
        }
        @($byWorker | Where-Object { $_.Type -eq 'item_completed' -and $_.Key -like 'f*' }).Count | Should -BeGreaterThan 0 -Because 'the worker must have retried some keys'

        # Time limits: every key of 's' timed out on its first try (UnitTimedOut, journaled as
        # timed out with the wait before the next try) and completed on its second; some on the worker.
        foreach ($n in 1..6) {
            $tries = @($events | Where-Object Key -eq "s$n")
            ($tries | ForEach-Object Type) -join ',' | Should -Be 'item_started,item_failed,item_started,item_completed' -Because "s$n"
            @($tries | ForEach-Object { "$($_.Worker)" } | Sort-Object -Unique).Count | Should -Be 1
            $tries[1].TimedOut | Should -BeTrue
            $tries[1].ErrorId | Should -Be 'UnitTimedOut'
            $tries[1].RetryIn | Should -BeGreaterThan 0
        }
        @($byWorker | Where-Object { $_.Type -eq 'item_completed' -and $_.Key -like 's*' }).Count | Should -BeGreaterThan 0 -Because 'some keys must have timed out on the worker'
        @(Get-Marks $marks done | Where-Object Key -like '[fs]*' | Group-Object Key).Count | Should -Be 14

        # A final failure on the worker: both tries journaled with its id, the second without a
        # retry; the worker fails (RunFailed, exit 1) and the owner's run fails with that item's
        # error (ItemFailed), as one process's run would.
        $lastTries = @($byWorker | Where-Object { $_.Type -eq 'item_failed' -and $_.Key -like 'x*' -and $_.Try -eq 2 })
        $lastTries.Count | Should -BeGreaterThan 0 -Because "the worker must have failed a key of 'final':`n$workerOutput"
        foreach ($last in $lastTries) {
            $last.RetryIn | Should -BeNullOrEmpty
            $last.Error | Should -Match "$($last.Key) fails on a worker"
            @($events | Where-Object { $_.Key -eq $last.Key -and $_.Type -eq 'item_failed' -and $_.Worker -eq $last.Worker }).Count | Should -Be 2
        }
        $workerExit | Should -Be 1 -Because $workerOutput
        $workerOutput | Should -Match 'WORKER ERROR RunFailed,.*x\d fails on a worker'
        $ownerExit | Should -Be 1 -Because $ownerOutput
        $ownerOutput | Should -Match 'OWNER ERROR RunFailed,.*x\d fails on a worker'
        $result.Status | Should -Be 'Failed'
        $result.Failed | Should -BeGreaterOrEqual 1
        $result.Error | Should -Match 'x\d fails on a worker'
        $result.Valid | Should -BeTrue
        # No key of 'final' completed on the worker; the owner's completed once each.
        @($events | Where-Object { $_.Type -eq 'item_completed' -and $_.Key -like 'x*' -and $_.Worker }).Count | Should -Be 0
        @($events | Where-Object { $_.Type -eq 'item_completed' -and $_.Key -like 'x*' } | Group-Object Key | Where-Object Count -gt 1).Count | Should -Be 0
    }

    It 'loses and duplicates nothing when the owner is SIGKILLed while workers record, also mid-transcription: the resume transcribes what was left, none of it twice' -Tag Slow {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot -Query 'lease=3'
        $marks = (New-Item -ItemType Directory (Join-Path $TestDrive 'marks-crash')).FullName
        $count = 600
        # The owner hangs at the named point "transcribed" (its events copied into the journal and
        # made durable, the rows not yet removed) once the test arms it, and is killed there.
        $hang = @"
Add-Type -TypeDefinition 'public static class TranscriptionHang { public static string Armed, Landed; public static void At(string point) { if (point == "transcribed" && System.IO.File.Exists(Armed)) { System.IO.File.WriteAllText(Landed, point); System.Threading.Thread.Sleep(-1); } } }'
[TranscriptionHang]::Armed = '$(Join-Path $marks 'arm')'; [TranscriptionHang]::Landed = '$(Join-Path $marks 'landed')'
`$null = Get-Run -Root '$(Join-Path $TestDrive 'no-runs')' # loads RunTools.Core
`$core = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'RunTools.Core' } | Select-Object -First 1
`$core.GetType('RunTools.Core.Engine.AttemptOptions').GetProperty('ProcessCrashPoint', [Reflection.BindingFlags]'NonPublic,Static').SetValue(`$null, [Delegate]::CreateDelegate([Action[string]], [TranscriptionHang].GetMethod('At')))
"@
        $owner = Start-RunOwner $store 'jcrash' $script:heldScript @{ Count = $count; SleepMs = 0; Marks = $marks; ArtifactEvery = 4 } (Join-Path $TestDrive 'local-crash-owner') -Prelude $hang
        $workers = @(1, 2 | ForEach-Object { Start-RunWorker $store 'jcrash' (Join-Path $TestDrive "local-crash-w$_") })
        $s = $store.Schema
        # Rows of worker_events whose event the journal holds already (the same worker and worker_seq).
        $copies = "SELECT count(*) FROM $s.worker_events w WHERE EXISTS (SELECT 1 FROM $s.events e WHERE e.run_id = 'jcrash' AND convert_from(e.line, 'UTF8')::jsonb->>'worker' = w.worker::text AND (convert_from(e.line, 'UTF8')::jsonb->>'worker_seq')::bigint = w.wseq)"
        try {
            Open-Gate $store $marks $workers
            # In the middle of the workers' burst: once they did some items, the next transcription hangs.
            Wait-For -What 'the workers to do items' -Children (@($owner) + $workers) {
                @(Get-Marks $marks done | Where-Object Process -in $workers.Id).Count -ge 60
            }
            New-Item -ItemType File (Join-Path $marks 'arm') | Out-Null
            Wait-For -What 'the owner to reach the point transcribed' -Children (@($owner) + $workers) {
                Test-Path -LiteralPath (Join-Path $marks 'landed')
            }
            $copiedAtKill = [int](Invoke-AdminSql $copies)
            Stop-ChildPwsh $owner
            $leftAtKill = [int](Invoke-AdminSql "SELECT count(*) FROM $s.worker_events")
            # The workers stop once the dead owner's lease expired.
            $workerExits = foreach ($w in $workers) { Wait-ChildPwsh $w -TimeoutSec 60 }
        } finally {
            Stop-ChildPwsh $owner
            foreach ($w in $workers) { Stop-ChildPwsh $w }
        }
        $copiedAtKill | Should -BeGreaterThan 0 -Because 'the kill must land after the journal took events whose rows were still there'
        $leftAtKill | Should -BeGreaterThan 0 -Because 'the kill must land while workers events wait to be transcribed'
        foreach ($exit in $workerExits) { $exit | Should -Be 3 }
        $doneAtKill = @(Get-Marks $marks done).Count
        $doneAtKill | Should -BeLessThan $count -Because 'the kill must land mid-run'

        # Besides the copies the kill left: the last twelve transcribed events and the last two
        # artifacts a worker recorded put back as well, so that every kind of event is among the copies.
        $null = Invoke-AdminSql @"
INSERT INTO $s.worker_events (run_id, worker, wseq, step, key, line)
SELECT DISTINCT 'jcrash', (j->>'worker')::uuid, (j->>'worker_seq')::bigint, j->>'step', j->>'key', line FROM (
  (SELECT line, convert_from(line, 'UTF8')::jsonb AS j FROM $s.events WHERE run_id = 'jcrash' AND convert_from(line, 'UTF8')::jsonb ? 'worker' ORDER BY seq DESC LIMIT 12)
  UNION ALL
  (SELECT line, convert_from(line, 'UTF8')::jsonb AS j FROM $s.events WHERE run_id = 'jcrash' AND type = 'artifact_added' AND convert_from(line, 'UTF8')::jsonb ? 'worker' ORDER BY seq DESC LIMIT 2)
) copies
ON CONFLICT DO NOTHING
"@
        # Among them a start whose completion the journal does not have yet (in the rows left, or lost with its worker), and an artifact.
        $openCopies = [int](Invoke-AdminSql @"
$copies AND convert_from(w.line, 'UTF8')::jsonb->>'type' = 'item_started'
AND NOT EXISTS (SELECT 1 FROM $s.events e WHERE e.run_id = 'jcrash' AND e.type = 'item_completed' AND convert_from(e.line, 'UTF8')::jsonb->>'key' = w.key)
"@)
        $openCopies | Should -BeGreaterThan 0 -Because 'the copies must hold a start of an unfinished item'
        [int](Invoke-AdminSql "$copies AND convert_from(w.line, 'UTF8')::jsonb->>'type' = 'artifact_added'") | Should -BeGreaterThan 0 -Because 'the copies must hold an artifact'

        $result = Invoke-InChild -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-crash-owner') } @"
`$root = '$($store.Uri)'
`$deadline = [DateTime]::UtcNow.AddSeconds(30)
while (`$true) { # the killed owner's lease lasts up to 3 s more
    `$info = Resume-Run -Root `$root -RunId jcrash -InDoubt Retry -ErrorAction SilentlyContinue -ErrorVariable refused
    if (`$LASTEXITCODE -ne 4 -or [DateTime]::UtcNow -gt `$deadline) { break }
    Start-Sleep -Milliseconds 500
}
`$events = @(Get-RunEvent -Root `$root -RunId jcrash | Where-Object Type -like 'item_*')
`$test = Test-Run -Root `$root -RunId jcrash
[pscustomobject]@{
    Status = `$info.Status; Exit = `$LASTEXITCODE; Refused = "`$refused"; Items = (Get-Run -Root `$root -RunId jcrash).ItemsCompleted
    Valid = `$test.IsValid; Problems = @(`$test.Problems | ForEach-Object { "`$(`$_.Kind): `$_" })
    Events = @(`$events | ForEach-Object { [pscustomobject]@{ Type = `$_.Type; Key = `$_.Data.key; Attempt = `$_.Data.attempt; Try = `$_.Data.try; Previous = `$_.Data.previous; Worker = `$_.Data.worker; WorkerSeq = `$_.Data.worker_seq } })
    Artifacts = @(Get-RunEvent -Root `$root -RunId jcrash -Type artifact_added | ForEach-Object { [pscustomobject]@{ Key = `$_.Data.key; Worker = `$_.Data.worker; WorkerSeq = `$_.Data.worker_seq } })
} | ConvertTo-Json -Compress -Depth 4
"@
        $result.Status | Should -Be 'Completed' -Because $result.Refused
        $result.Valid | Should -BeTrue -Because ($result.Problems -join '; ')
        $result.Items | Should -Be $count
        [int](Invoke-AdminSql "SELECT count(*) FROM $s.worker_events") | Should -Be 0
        $events = @($result.Events)
        # Each key completed once; no event of a worker's was copied twice (one start per key, attempt and try).
        @($events | Where-Object Type -eq item_completed | Group-Object Key | Where-Object Count -gt 1).Count | Should -Be 0
        @($events | Where-Object Type -eq item_completed).Count | Should -Be $count
        $twiceStarted = @($events | Where-Object Type -eq item_started | Group-Object { '{0}/{1}/{2}/{3}' -f $_.Key, $_.Attempt, $_.Try, $_.Previous } | Where-Object Count -gt 1 | ForEach-Object Name)
        $twiceStarted | Should -BeNullOrEmpty
        # Nor twice by the worker's own number (every kind of event, artifacts included), and Test-Run finds no repeat.
        $transcribed = @($events) + @($result.Artifacts) | Where-Object Worker
        @($transcribed | Group-Object { '{0}/{1}' -f $_.Worker, $_.WorkerSeq } | Where-Object Count -gt 1).Count | Should -Be 0
        @($transcribed | Where-Object { -not $_.WorkerSeq }).Count | Should -Be 0
        @($result.Artifacts | Where-Object Worker).Count | Should -BeGreaterThan 0
        @($result.Problems) -match '^RepeatedEvent' | Should -BeNullOrEmpty
        @($events | Where-Object Type -eq item_failed).Count | Should -Be 0
        @($events | Where-Object { $_.Type -eq 'item_completed' -and $_.Worker }).Count | Should -BeGreaterThan 0
        # A key's work was done twice only when it was in doubt (started by a process that died or stopped).
        $inDoubt = @($events | Where-Object { $_.Type -eq 'item_started' -and $_.Previous -eq 'in_doubt' } | ForEach-Object Key)
        $twice = @(Get-Marks $marks done | Group-Object Key | Where-Object Count -gt 1 | ForEach-Object Name)
        foreach ($key in $twice) { $inDoubt | Should -Contain $key }
        @(Get-Marks $marks done | Group-Object Key).Count | Should -Be $count
    }

    It 'keeps a worker through a database outage of 7 s while it waits for a step of the owner: it waits the outage out within its lease, as the owner does' -Tag Slow {
        if (-not $script:haveCluster) { return }
        # A cluster of its own, crashed and kept down here, with the default lease (30 s). A worker
        # waiting for the owner's step reads the run's events; before the fix those reads gave up
        # after their plain retries (about 4 s) and the worker left with StoreUnavailable.
        $store = Start-OwnCluster 'rt-outage-'
        $marks = (New-Item -ItemType Directory (Join-Path $TestDrive 'marks-outage')).FullName
        $owner = $null; $worker = $null
        try {
            $owner = Start-RunOwner $store 'joutage' $script:heldScript @{ Count = 40; SleepMs = 20; Marks = $marks; Finish = 1 } (Join-Path $TestDrive 'local-outage-owner')
            $worker = Start-RunWorker $store 'joutage' (Join-Path $TestDrive 'local-outage-worker')
            Open-Gate $store $marks @($worker)
            Wait-For -What 'every item done' -Children @($owner, $worker) { @(Get-Marks $marks done | Group-Object Key).Count -eq 40 }
            Start-Sleep -Seconds 1 # the worker is now waiting for the step 'finish', which waits for its mark
            Restart-OwnCluster $store -DownSeconds 7
            New-Item -ItemType File (Join-Path $marks 'finish') | Out-Null
            $ownerExit = Wait-ChildPwsh $owner -TimeoutSec 120
            $workerExit = Wait-ChildPwsh $worker -TimeoutSec 60
        } finally {
            foreach ($child in @($owner, $worker) | Where-Object { $_ }) { Stop-ChildPwsh $child }
            Stop-OwnCluster $store
        }
        $printed = "The owner printed:`n$(Get-ChildPwshOutput $owner)`nThe worker printed:`n$(Get-ChildPwshOutput $worker)"
        $ownerExit | Should -Be 0 -Because $printed
        @(Get-Marks $marks done | Where-Object Process -eq $worker.Id).Count | Should -BeGreaterThan 0 -Because "the worker took part; $printed"
        # Before the fix: WORKER ERROR RunFailed ... Could not read the run's events ... (retried 4 times over 4.3 s), exit 1.
        Get-ChildPwshOutput $worker | Should -Not -Match 'WORKER ERROR' -Because $printed
        # Its script ended (it replayed the last step, 0), or the owner ended the attempt while the
        # worker was still waiting out the outage (3, its part stopped): never a failure.
        $workerExit | Should -BeIn 0, 3 -Because $printed
    }
}
