<#
    The fault paths of Join-Run (docs/multi-machine.md "Faults with workers") with real processes:
    a worker that is only slow (SIGSTOPped past its registration) and whose late completion is
    refused, and retries, time limits and a final failure on a worker. The owner and the workers
    are child pwsh processes; the test steers them with marker files in one folder:
      go                the owner's first step waits for it (the test writes it once a worker registered)
      hold-PID          items of process PID wait while it exists
      hold-PID-KEY      item KEY waits in process PID while it exists
      fast              items no longer sleep
    and reads what they did from it: begin-PID-RS.txt and done-PID-RS.txt (one line per key, one
    file per runspace). Needs the cluster's RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN.
#>
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    $script:haveCluster = $env:RUNTOOLS_TEST_PG -and $env:RUNTOOLS_TEST_PG_ADMIN

    # An item: it notes its begin, waits while held, then notes that it did its work.
    $script:heldScript = Join-Path $TestDrive 'held.ps1'
    Set-Content $script:heldScript @'
param([int] $Count = 200, [int] $SleepMs = 50, [string] $Marks)
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
    [IO.File]::AppendAllText((Join-Path $using:Marks "done-$tag.txt"), "$key`n")
    $_
}
'@

    # Lines of the marker files named PREFIX-*.txt, as Key and Process.
    function Get-Marks([string] $Folder, [string] $Prefix) {
        foreach ($file in Get-ChildItem -LiteralPath $Folder -Filter "$Prefix-*.txt") {
            foreach ($line in [IO.File]::ReadAllLines($file.FullName)) { [pscustomobject]@{ Key = $line; Process = [int]$file.Name.Split('-')[1] } }
        }
    }

    # The owner: Start-Run, then (in the same process, saving a pwsh start) -Check, whose last line it prints as CHECK <json>.
    function Start-Owner($Store, [string] $RunId, [string] $Script, [hashtable] $Parameters, [string] $Local, [string] $Check = "'null'") {
        $params = ($Parameters.GetEnumerator() | ForEach-Object { "$($_.Key) = '$($_.Value)'" }) -join '; '
        Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = $Local } -Command @"
`$info = Start-Run -Name joined -RunId $RunId -ScriptPath '$Script' -Root '$($Store.Uri)' -Parameters @{ $params } -ErrorAction Continue
`$exit = `$LASTEXITCODE
'OWNER {0} {1}' -f `$info.Status, `$exit
`$root = '$($Store.Uri)'; `$runId = '$RunId'
'CHECK ' + (& { $Check } | Select-Object -Last 1)
exit `$exit
"@
    }

    function Get-Check($Child) {
        $line = (Get-ChildPwshOutput $Child) -split "`n" | Where-Object { $_ -like 'CHECK *' } | Select-Object -Last 1
        if (-not $line) { throw "The owner printed no CHECK line:`n$(Get-ChildPwshOutput $Child)" }
        $line.Substring(6) | ConvertFrom-Json
    }

    # A worker; it prints WORKER ERROR <id>: <message> per error and WORKER EXIT <code>.
    function Start-Worker($Store, [string] $RunId, [string] $Local, [string] $Query) {
        $uri = if ($Query) { "$($Store.Uri)&$Query" } else { $Store.Uri }
        Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = $Local } -Command @"
`$deadline = [DateTime]::UtcNow.AddSeconds(60)
while (-not (Get-Run -Root '$uri' -RunId $RunId -ErrorAction SilentlyContinue | Where-Object Status -eq Running)) {
    if ([DateTime]::UtcNow -gt `$deadline) { throw 'the run never ran' }
    Start-Sleep -Milliseconds 100
}
`$null = Join-Run -Root '$uri' -RunId $RunId -ErrorAction SilentlyContinue -ErrorVariable joinErrors
foreach (`$e in `$joinErrors) { 'WORKER ERROR {0}: {1}' -f `$e.FullyQualifiedErrorId, `$e.Exception.Message }
'WORKER EXIT {0}' -f `$LASTEXITCODE
exit `$LASTEXITCODE
"@
    }

    # Lets the owner's first step end once a worker is registered, so that the owner admits it at its first item.
    function Open-Gate($Store, [string] $Marks, [object[]] $Workers) {
        Wait-For -What 'the workers to register' -Children $Workers {
            # The owner creates the store's tables: until then there is no worker either.
            try { [int](Invoke-AdminSql "SELECT count(*) FROM $($Store.Schema).workers") -ge $Workers.Count } catch { $false }
        }
        New-Item -ItemType File (Join-Path $Marks 'go') | Out-Null
    }

    # Polls -Condition; on timeout fails naming -What with what the -Children printed (read only then: reading it waits for the child).
    function Wait-For([scriptblock] $Condition, [string] $What, [object[]] $Children = @(), [int] $TimeoutSec = 60) {
        $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSec)
        while (-not (& $Condition)) {
            if ([DateTime]::UtcNow -gt $deadline) {
                foreach ($child in $Children) { Stop-ChildPwsh $child }
                throw "Timed out waiting for $What. The processes printed:`n$(($Children | ForEach-Object { Get-ChildPwshOutput $_ }) -join "`n---`n")"
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
        $owner = Start-Owner $store 'jlate' $script:heldScript @{ Count = 200; SleepMs = 50; Marks = $marks } (Join-Path $TestDrive 'local-late-owner') $check
        $paused = Start-Worker $store 'jlate' (Join-Path $TestDrive 'local-late-paused')
        $unaware = Start-Worker $store 'jlate' (Join-Path $TestDrive 'local-late-unaware') -Query 'lease=90'
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

            Send-Signal STOP $paused.Id
            $stopped = $true
            # Far from the unaware worker's next heartbeat (a third of 90 s after its last), end its registration.
            $registration = "pid = $($unaware.Id)"
            Wait-For -What 'the unaware worker to be 20 s from its next heartbeat' -Children $workers {
                [double](Invoke-AdminSql "SELECT extract(epoch FROM expires_at - now()) FROM $($store.Schema).workers WHERE $registration") -gt 80
            }
            $null = Invoke-AdminSql "UPDATE $($store.Schema).workers SET expires_at = now() - interval '1 second' WHERE $registration"

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

        $result = Get-Check $owner
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
}
