BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $script:parallelScript = Join-Path $PSScriptRoot 'scripts/parallel-items.ps1'
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force

    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    # A folder, or with RUNTOOLS_TEST_STORE 'postgresql' a fresh schema (tests/StoreContract.Tests.ps1).
    function New-Root { New-TestRoot -Under $TestDrive }

    function Start-Child([string] $Command) { Start-ChildPwsh -Command $Command -ModulePath $env:RUNTOOLS_MODULE_PATH }

    # Waits for a condition; with -Child, fails at once if the child exits first, and says what it printed.
    function Wait-Until([scriptblock] $Condition, [int] $Seconds = 60, $Child) {
        $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
        while (-not (& $Condition)) {
            $exited = $Child -and $Child.Process.HasExited
            if ($exited -or [DateTime]::UtcNow -gt $deadline) {
                $why = if ($exited) { "the child exited with code $($Child.Process.ExitCode) before" } else { "timed out after $Seconds s" }
                $printed = if ($Child) { Stop-ChildPwsh $Child; "`nThe child printed:`n$(Get-ChildPwshOutput $Child)" } else { '' }
                throw "$why waiting for: $Condition$printed"
            }
            Start-Sleep -Milliseconds 50
        }
    }

    # Workers an earlier attempt of this process kept for the next one close when the module is
    # removed: a test that counts the workers it opens starts with none kept.
    function Reset-KeptWorkers { Import-Module $env:RUNTOOLS_MODULE_PATH -Force }

    # The runspaces open now that were not in $Before (InstanceIds).
    function Get-NewRunspace($Before) { @(Get-Runspace | Where-Object { $_.InstanceId -notin $Before }) }

    # What the worker runspaces kept for a next attempt look like: attached to no run, running nothing.
    function Assert-KeptIdle($Runspaces) {
        foreach ($r in $Runspaces) {
            $r.Name | Should -Be 'RunToolsItemWorker(idle)' -Because 'a worker left open after its attempt waits, attached to no run'
            "$($r.RunspaceAvailability)" | Should -Be 'Available' -Because 'a kept worker runs nothing'
        }
    }

    # key -> how many times its side effect ran (scripts/parallel-items.ps1 writes one file per key).
    function Get-EffectCounts([string] $Dir) {
        $counts = @{}
        if (Test-Path $Dir) { Get-ChildItem $Dir -File | ForEach-Object { $counts[$_.Name] = @(Get-Content $_.FullName | Where-Object { $_ }).Count } }
        $counts
    }

    # Keys started and not completed (nor failed) in the journal: the items in doubt after a kill or stop.
    function Get-OpenKeys([string] $RunId, [string] $Root) {
        $events = @(Get-RunEvent -RunId $RunId -Root $Root | Where-Object Type -In 'item_started', 'item_completed', 'item_failed', 'item_resolved')
        $open = [Collections.Generic.HashSet[string]]::new()
        foreach ($e in $events) { if ($e.Type -eq 'item_started') { $null = $open.Add($e.Key) } else { $null = $open.Remove($e.Key) } }
        @($open | Sort-Object)
    }
}

Describe 'Invoke-RunItem -ThrottleLimit' {
    It 'runs items in worker runspaces with $using: and $_; Get-RunContext and Add-RunArtifact know the item' {
        $root = New-Root
        $out = Join-Path $TestDrive 'using.json'
        $script = Join-Path $TestDrive 'using.ps1'
        Set-Content $script @'
param($Config, [string] $OutPath)
$prefix = 'p'
$results = @(1..6 | Invoke-RunItem -Key { "i$_" } -Step work -ThrottleLimit 3 {
    # Each item waits (up to 10 s) until a second runspace has begun one, so that one quick runspace cannot take them all.
    $folder = [IO.Path]::GetDirectoryName($using:OutPath)
    $null = New-Item -ItemType File -Force (Join-Path $folder "rs-$([runspace]::DefaultRunspace.InstanceId)")
    $deadline = [DateTime]::UtcNow.AddSeconds(10)
    while (@(Get-ChildItem -LiteralPath $folder -Filter 'rs-*').Count -lt 2 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
    $file = Join-Path ([IO.Path]::GetDirectoryName($using:OutPath)) "art-$_.txt"
    Set-Content $file "artifact $_"
    $null = Add-RunArtifact $file -Name "art-$_"
    "$($using:prefix)$_|$((Get-RunContext).CurrentItem)|$([runspace]::DefaultRunspace.InstanceId)"
})
Set-Content $OutPath $results
'@
        $run = Start-Run -Name using -ScriptPath $script -Root $root -Parameters @{ OutPath = $out }
        $run.Status | Should -Be 'Completed'
        $seen = @(Get-Content $out | ForEach-Object { $v, $c, $r = $_ -split '\|'; [pscustomobject]@{ Value = $v; Current = $c; Runspace = $r } })
        @($seen.Value | Sort-Object) | Should -Be @(1..6 | ForEach-Object { "p$_" })
        foreach ($s in $seen) { $s.Current | Should -Be ('i' + $s.Value.Substring(1)) -Because 'CurrentItem is the key of the item running in that runspace' }
        @($seen.Runspace | Sort-Object -Unique).Count | Should -BeGreaterThan 1 -Because 'the items ran in several worker runspaces'
        $seen.Runspace | Should -Not -Contain ([string][runspace]::DefaultRunspace.InstanceId)

        $artifacts = @(Get-RunEvent -RunId $run.RunId -Root $root -Type artifact_added)
        $artifacts.Count | Should -Be 6
        foreach ($a in $artifacts) { $a.Key | Should -Be ('i' + ($a.Data.name -replace '^art-')) -Because 'each artifact is recorded for the item that added it' }
        (Test-Run -RunId $run.RunId -Root $root).IsValid | Should -BeTrue
    }

    It 'runs each item in a scope of its own: its variables end with it, while its globals stay for the next items of the call' {
        $root = New-Root
        $out = Join-Path $TestDrive 'scope.txt'
        $script = Join-Path $TestDrive 'scope.ps1'
        Set-Content $script @'
param($Config, [string] $OutPath)
$lines = @(1..8 | Invoke-RunItem -Key { "k$_" } -Step work -ThrottleLimit 2 {
    $before = "$mine"
    $mine = $_
    $global:count++
    "$([runspace]::DefaultRunspace.InstanceId)|$before|$global:count"
})
Set-Content $OutPath $lines
'@
        $run = Start-Run -Name scope -ScriptPath $script -Root $root -Parameters @{ OutPath = $out }
        $run.Status | Should -Be 'Completed'
        $seen = @(Get-Content $out | ForEach-Object { $r, $b, $c = $_ -split '\|'; [pscustomobject]@{ Runspace = $r; Before = $b; Count = [int]$c } })
        $seen.Count | Should -Be 8
        $seen.Before | Where-Object { $_ } | Should -BeNullOrEmpty -Because 'a variable an item sets is not seen by the next item of its worker'
        foreach ($worker in $seen | Group-Object Runspace) {
            @($worker.Group | ForEach-Object Count | Sort-Object) | Should -Be @(1..$worker.Count) -Because 'a global an item sets is seen by the next items of its worker in the call'
        }
    }

    It 'runs each item in a scope of its own under -TimeoutSec too, with -ThrottleLimit <Throttle>: nothing it sets is seen by the next item or the run script' -ForEach @(
        @{ Throttle = 1 }
        @{ Throttle = 2 }
    ) {
        $root = New-Root
        $out = Join-Path $TestDrive "scope-timed-$Throttle.txt"
        $script = Join-Path $TestDrive "scope-timed-$Throttle.ps1"
        Set-Content $script @"
param(`$Config, [string] `$OutPath)
`$target = 'original'
`$lines = @(1..6 | Invoke-RunItem -Key { "k`$_" } -Step work -ThrottleLimit $Throttle -TimeoutSec 60 {
    `$before = "`$mine"
    `$mine = `$_
    `$target = "overwritten by item `$_"
    `$before
})
Set-Content `$OutPath (@(`$lines) + "target=`$target")
"@
        $run = Start-Run -Name scope -ScriptPath $script -Root $root -Parameters @{ OutPath = $out }
        $run.Status | Should -Be 'Completed'
        $seen = @(Get-Content $out)
        $seen[-1] | Should -Be 'target=original' -Because 'an item does not write into the run script''s variables'
        $seen[0..($seen.Count - 2)] | Where-Object { $_ } | Should -BeNullOrEmpty -Because 'a variable an item sets is not seen by the next item'
    }

    It 'lets an error an item lets pass (Write-Error -ErrorAction Continue) through without failing the run, as a sequential item does: -ThrottleLimit <Throttle>' -ForEach @(
        @{ Throttle = 1 }
        @{ Throttle = 2 }
    ) {
        $root = New-Root
        $script = Join-Path $TestDrive "soft-$Throttle.ps1"
        Set-Content $script @"
1..3 | Invoke-RunItem -Key { "k`$_" } -Step work -ThrottleLimit $Throttle {
    Write-Error "soft error `$_" -ErrorAction Continue
    "done `$_"
}
"@
        $run = Start-Run -Name soft -ScriptPath $script -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue 2>$null
        $run.Status | Should -Be 'Completed'
        $run.ItemsCompleted | Should -Be 3
        $errors | Where-Object FullyQualifiedErrorId -Like 'RunFailed*' | Should -BeNullOrEmpty
    }

    It 'shows each message of a parallel item once, obeys the run script''s redirections, and logs every item''s messages in order: <Label>' -ForEach @(
        @{ Label = 'no time limit'; Limit = '' }
        @{ Label = '-TimeoutSec'; Limit = '-TimeoutSec 60' }
    ) {
        # In a child pwsh: what its host shows is its standard output.
        $root = Join-Path $TestDrive "messages-$($Limit.Length)"
        $script = Join-Path $TestDrive "messages-$($Limit.Length).ps1"
        Set-Content $script @"
`$VerbosePreference = 'Continue'
`$null = 1..4 | Invoke-RunItem -Key { "k`$_" } -Step shown -ThrottleLimit 2 $Limit {
    Start-Sleep -Milliseconds (40 * `$_)
    Write-Warning "warn `$_"
    Write-Host "host `$_"
    Write-Verbose "verbose `$_"
    Write-Host "no line end `$_" -NoNewline; Write-Host "; line end"
    "out-host `$_" | Out-Host
    `$_
}
1..2 | Invoke-RunItem -Key { "q`$_" } -Step quiet -ThrottleLimit 2 $Limit { Write-Warning "hidden warn `$_"; Write-Host "hidden host `$_" } 3>`$null 6>`$null
"@
        $result = Invoke-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -TimeoutSec 120 -Command "`$r = Start-Run -Name messages -ScriptPath '$script' -Root '$root'; 'STATUS=' + `$r.Status; 'LOG=' + (Join-Path `$r.Path logs/attempt-1.log)"
        $result.Output | Should -Match 'STATUS=Completed'
        $lines = $result.Output -split '\r?\n' -replace '\e\[[0-9;]*m', ''
        foreach ($i in 1..4) {
            foreach ($shown in "WARNING: warn $i", "host $i", "VERBOSE: verbose $i", "no line end $i; line end", "out-host $i") {
                @($lines | Where-Object { $_ -eq $shown }).Count | Should -Be 1 -Because "the host shows '$shown' once (it printed:`n$($result.Output))"
            }
        }

        $lines | Where-Object { $_ -like '*hidden*' } | Should -BeNullOrEmpty -Because '3>$null and 6>$null on Invoke-RunItem hide its items'' warnings and Write-Host'
        $log = Get-Content ($lines | Where-Object { $_ -like 'LOG=*' }).Substring(4) | ForEach-Object { ($_ -split ' ', 2)[1] }
        foreach ($i in 1..4) {
            $at = [array]::IndexOf([string[]]$log, "WARNING: warn $i")
            $at | Should -BeGreaterOrEqual 0 -Because "item $i's warning is in the attempt log (the log:`n$($log -join "`n"))"
            $log[$at + 1] | Should -Be "INFO: host $i" -Because 'an item''s messages are logged in the order it wrote them'
            $log[$at + 2] | Should -Be "VERBOSE: verbose $i"
            @($log | Where-Object { $_ -eq "WARNING: warn $i" }).Count | Should -Be 1
        }

        $log | Where-Object { $_ -like '*hidden*' } | Should -BeNullOrEmpty
    }

    It 'writes output in completion order, and replays every output on resume' {
        $root = New-Root
        $out = Join-Path $TestDrive 'order.txt'
        $flag = Join-Path $TestDrive 'order.fail'
        $gate = Join-Path $TestDrive 'order-gate'
        $null = New-Item -ItemType Directory $gate
        Set-Content $flag 'fail once'
        $script = Join-Path $TestDrive 'order.ps1'
        Set-Content $script @'
param($Config, [string] $OutPath, [string] $Flag, [string] $Gate)
$results = 4, 3, 2, 1 | Invoke-RunItem -Key { "n$_" } -Step sleepers -ThrottleLimit 4 {
    # All four start together (worker runspaces open at different speeds), then sleep 1000..250 ms
    # (steps of 250 ms, so that the order holds on a loaded machine).
    Set-Content (Join-Path $using:Gate $_) $_
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    while (@(Get-ChildItem $using:Gate).Count -lt 4 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 10 }
    Start-Sleep -Milliseconds ($_ * 250)
    Add-Content -Path "$($using:OutPath).effects" -Value $_
    "out$_"
}
Add-Content -Path $OutPath -Value ($results -join ',')
Invoke-RunStep after { if (Test-Path $Flag) { throw 'after fails once' } }
'@
        $params = @{ OutPath = $out; Flag = $flag; Gate = $gate }
        $first = Start-Run -Name order -ScriptPath $script -Root $root -Parameters $params -ErrorAction SilentlyContinue
        $first.Status | Should -Be 'Failed'
        Remove-Item $flag
        $final = Resume-Run -RunId $first.RunId -Root $root -Parameters $params
        $final.Status | Should -Be 'Completed'
        $lines = @(Get-Content $out)
        $lines[0] | Should -Be 'out1,out2,out3,out4' -Because 'the shortest item finished first'
        $lines[1] | Should -Be 'out4,out3,out2,out1' -Because 'on resume every output is replayed (in input order), none run again'
        @(Get-Content "$out.effects").Count | Should -Be 4
    }

    It 'under the run script''s default Stop, a failed item starts no new item; those in flight finish, their messages are logged, and nothing is left in doubt' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'stopping'
        $script = Join-Path $TestDrive 'stopping.ps1'
        Set-Content $script @'
param($Config, [string] $EffectsDir)
$null = New-Item -ItemType Directory -Force $EffectsDir
1..40 | Invoke-RunItem -Key { "s$_" } -Step work -ThrottleLimit 4 {
    Add-Content (Join-Path $using:EffectsDir "s$_") 'ran'
    if ($_ -eq 3 -and (Get-RunContext).Attempt -eq 1) { throw "item 3 failed on purpose" }
    Start-Sleep -Milliseconds 200
    Write-Warning "item s$_ ran"
}
'@
        $first = Start-Run -Name stopping -ScriptPath $script -Root $root -Parameters @{ EffectsDir = $effects } -ErrorAction SilentlyContinue
        $first.Status | Should -Be 'Failed'
        $events = @(Get-RunEvent -RunId $first.RunId -Root $root)
        $started = @($events | Where-Object Type -EQ item_started | ForEach-Object Key | Sort-Object -Unique)
        $ended = @($events | Where-Object Type -In item_completed, item_failed | ForEach-Object Key | Sort-Object -Unique)
        $started.Count | Should -BeLessThan 40 -Because 'no new item starts after the failure'
        $failedAt = ($events | Where-Object Type -EQ item_failed | Select-Object -First 1).Sequence
        @($events | Where-Object { $_.Type -eq 'item_started' -and $_.Sequence -gt $failedAt }).Key | Should -BeNullOrEmpty -Because 'no item starts once the failure is recorded, not even on the worker whose item failed'
        $ended | Should -Be $started -Because 'every item that started finished and was recorded: none in doubt'
        $log = Get-Content -Raw (Join-Path (Get-RunFolder $first) 'logs/attempt-1.log')
        foreach ($key in $started | Where-Object { $_ -ne 's3' }) {
            $log | Should -BeLike "*WARNING: item $key ran*" -Because 'the messages of the items that finished after the failure still reach the attempt log'
        }

        $final = Resume-Run -RunId $first.RunId -Root $root -Parameters @{ EffectsDir = $effects }
        $final.Status | Should -Be 'Completed'
        $counts = Get-EffectCounts $effects
        $counts.Count | Should -Be 40
        foreach ($key in $counts.Keys) { $counts[$key] | Should -Be ($(if ($key -eq 's3') { 2 } else { 1 })) }
    }

    It 'with -ErrorAction Continue, fails the step when one item fails while the others complete; a resume runs only the failed one' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'failing'
        $flag = Join-Path $TestDrive 'failing.flag'
        Set-Content $flag 'fail'
        $script = Join-Path $TestDrive 'failing.ps1'
        Set-Content $script @'
param($Config, [string] $EffectsDir, [string] $Flag)
$null = New-Item -ItemType Directory -Force $EffectsDir
1..8 | Invoke-RunItem -Key { "f$_" } -Step work -ThrottleLimit 4 -ErrorAction Continue {
    Add-Content (Join-Path $using:EffectsDir "f$_") 'ran'
    if ($_ -eq 3 -and (Test-Path $using:Flag)) { throw "item 3 failed on purpose" }
    Start-Sleep -Milliseconds 50
}
'@
        $params = @{ EffectsDir = $effects; Flag = $flag }
        $first = Start-Run -Name failing -ScriptPath $script -Root $root -Parameters $params -ErrorAction SilentlyContinue
        $first.Status | Should -Be 'Failed'
        $failed = @(Get-RunEvent -RunId $first.RunId -Root $root -Type item_failed)
        $failed.Key | Should -Be @('f3')
        $failed[0].Data.error | Should -Match 'item 3 failed on purpose' -Because 'the real error is kept'
        @(Get-RunEvent -RunId $first.RunId -Root $root -Type item_completed).Count | Should -Be 7 -Because 'the other items complete'
        (Get-RunEvent -RunId $first.RunId -Root $root -Type step_failed).Step | Should -Be 'work'

        Remove-Item $flag
        $final = Resume-Run -RunId $first.RunId -Root $root -Parameters $params
        $final.Status | Should -Be 'Completed'
        $counts = Get-EffectCounts $effects
        $counts.Count | Should -Be 8
        foreach ($key in $counts.Keys) { $counts[$key] | Should -Be ($(if ($key -eq 'f3') { 2 } else { 1 })) -Because "$key runs again only if it failed" }
        (Test-Run -RunId $first.RunId -Root $root).IsValid | Should -BeTrue
    }

    It 'rejects -ThrottleLimit <Limit> as a parameter validation error' -ForEach @(@{ Limit = 0 }, @{ Limit = 65 }) {
        $root = New-Root
        $script = Join-Path $TestDrive "limit$Limit.ps1"
        Set-Content $script "`$ErrorActionPreference = 'Stop'; 1 | Invoke-RunItem -Key { `$_ } -Step s -ThrottleLimit $Limit { `$_ }"
        $run = Start-Run -Name limit -ScriptPath $script -Root $root -ErrorAction SilentlyContinue
        $run.Status | Should -Be 'Failed'
        $run.Error | Should -Match 'ThrottleLimit'
        @(Get-RunEvent -RunId $run.RunId -Root $root -Type item_started).Count | Should -Be 0
        { 1 | Invoke-RunItem -Key { $_ } -Step s -ThrottleLimit $Limit { $_ } } | Should -Throw -ErrorId 'ParameterArgumentValidationError*'
    }
}

Describe 'Stop-Run and a real kill during a parallel step' {
    It 'Stop-Run lets the items in flight finish, the run ends Stopped, and a resume completes it' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'stop'
        $child = Start-Child "Start-Run -Name pstop -RunId pstop -ScriptPath '$parallelScript' -Root '$root' -Parameters @{ EffectsDir = '$effects'; Count = 64; DelayMilliseconds = 200 }"
        Wait-Until { (Get-EffectCounts $effects).Count -ge 12 } -Child $child
        $null = Stop-Run -RunId pstop -Root $root -Reason 'maintenance'
        Wait-ChildPwsh $child -TimeoutSec 120 | Should -Be 0
        $stopped = Get-Run -RunId pstop -Root $root
        $stopped.Status | Should -Be 'Stopped'
        $stopped.ItemsCompleted | Should -BeLessThan 64
        (Test-Run -RunId pstop -Root $root).IsValid | Should -BeTrue
        $inDoubt = Get-OpenKeys pstop $root
        $inDoubt.Count | Should -Be 0 -Because 'items in flight at a Stop-Run finish and are recorded'

        $final = Resume-Run -RunId pstop -Root $root -Parameters @{ EffectsDir = $effects; Count = 64 } -Force -WarningAction SilentlyContinue
        $final.Status | Should -Be 'Completed'
        $counts = Get-EffectCounts $effects
        $counts.Count | Should -Be 64
        @($counts.Keys | Where-Object { $counts[$_] -ne 1 }) | Should -BeNullOrEmpty -Because 'every side effect ran exactly once'
        (Test-Run -RunId pstop -Root $root).IsValid | Should -BeTrue
    }

    It 'Ctrl+C stops the items in flight and leaves them in doubt; the run ends Stopped and resumes to the end' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'ctrlc'
        $runspacesBefore = @(Get-Runspace).Count
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$env:RUNTOOLS_MODULE_PATH'; Start-Run -Name pctrlc -RunId pctrlc -ScriptPath '$parallelScript' -Root '$root' -Parameters @{ EffectsDir = '$effects'; Count = 64; DelayMilliseconds = 2000 }")
        $handle = $ps.BeginInvoke()
        try {
            # Every item sleeps 2 s after its side effect: with 8 effects done, 8 items are mid-work.
            Wait-Until { (Get-EffectCounts $effects).Count -ge 8 }
            $ps.Stop()   # what Ctrl+C does to the running pipeline
        } finally {
            try { $null = $ps.EndInvoke($handle) } catch { }
            $ps.Dispose()
        }
        @(Get-Runspace).Count | Should -Be $runspacesBefore -Because 'Ctrl+C ended the attempt, which closed its worker runspaces'
        $run = Get-Run -RunId pctrlc -Root $root
        $run.Status | Should -Be 'Stopped'
        (Get-RunEvent -RunId pctrlc -Root $root -Type run_stopped).Data.requested_by | Should -Be 'Ctrl+C'
        (Test-Run -RunId pctrlc -Root $root).IsValid | Should -BeTrue
        $before = Get-EffectCounts $effects
        $inDoubt = Get-OpenKeys pctrlc $root
        $inDoubt.Count | Should -BeGreaterThan 0 -Because 'the items cut off mid-work are in doubt'
        $inDoubt.Count | Should -BeLessOrEqual 8
        $inDoubt | Where-Object { -not $before.ContainsKey($_) } | Should -BeNullOrEmpty -Because 'an item in doubt here had done its side effect and was sleeping'

        $final = Resume-Run -RunId pctrlc -Root $root -InDoubt Skip -Parameters @{ EffectsDir = $effects; Count = 64; DelayMilliseconds = 0 } -Force -WarningAction SilentlyContinue
        $final.Status | Should -Be 'Completed'
        $counts = Get-EffectCounts $effects
        $counts.Count | Should -Be 64
        @($counts.Keys | Where-Object { $counts[$_] -ne 1 }) | Should -BeNullOrEmpty -Because 'under Skip the in-doubt items are not run again, the rest run once'
        @((Get-RunEvent -RunId pctrlc -Root $root -Type item_resolved).Key | Sort-Object) | Should -Be $inDoubt
    }

    It 'a SIGKILL with 8 items in flight leaves at most 8 in doubt; Resume-Run -InDoubt <Policy> completes, repeating only those' -ForEach @(
        @{ Policy = 'Retry' }, @{ Policy = 'Skip' }
    ) {
        $root = New-Root
        $effects = Join-Path $TestDrive "kill-$Policy"
        $child = Start-Child "Start-Run -Name pkill -RunId pkill -ScriptPath '$parallelScript' -Root '$root' -Parameters @{ EffectsDir = '$effects'; Count = 64; DelayMilliseconds = 300 }"
        Wait-Until { (Get-EffectCounts $effects).Count -ge 20 } -Child $child
        Stop-ChildPwsh $child   # SIGKILL: no cleanup, no finally
        $before = Get-EffectCounts $effects
        $completedBefore = @((Get-RunEvent -RunId pkill -Root $root -Type item_completed).Key)
        $inDoubt = Get-OpenKeys pkill $root
        $inDoubt.Count | Should -BeGreaterThan 0 -Because 'items sleep 300 ms after their side effect, so the kill lands with items in flight'
        $inDoubt.Count | Should -BeLessOrEqual 8
        Wait-RunInterrupted -RunId pkill -Root $root | Should -Be 'Interrupted'

        $final = Resume-Run -RunId pkill -Root $root -InDoubt $Policy -Parameters @{ EffectsDir = $effects; Count = 64 } -Force -WarningAction SilentlyContinue
        $final.Status | Should -Be 'Completed'
        (Test-Run -RunId pkill -Root $root).IsValid | Should -BeTrue
        @((Get-RunEvent -RunId pkill -Root $root -Type item_resolved).Key | Sort-Object) | Should -Be $inDoubt -Because 'every key in doubt, and only those, is resolved by the policy'
        $counts = Get-EffectCounts $effects
        $repeated = @($counts.Keys | Where-Object { $counts[$_] -gt 1 })
        $repeated | Where-Object { $_ -notin $inDoubt } | Should -BeNullOrEmpty -Because 'only a key in doubt may be repeated'
        $completedBefore | Where-Object { $counts[$_] -ne 1 } | Should -BeNullOrEmpty -Because 'a completed item is never redone'
        (Get-RunEvent -RunId pkill -Root $root -Type item_completed | Group-Object Key | Where-Object Count -gt 1) | Should -BeNullOrEmpty
        if ($Policy -eq 'Retry') {
            $counts.Count | Should -Be 64
            # An in-doubt key that had done its side effect runs once more; one killed before it, once.
            foreach ($key in $inDoubt) { $counts[$key] | Should -Be (1 + [int]$before[$key]) }
        } else {
            $repeated.Count | Should -Be 0
            foreach ($key in $inDoubt) { [int]$counts[$key] | Should -Be ([int]$before[$key]) -Because 'Skip never runs a key in doubt again' }
            $counts.Count | Should -Be (64 - @($inDoubt | Where-Object { -not $before.ContainsKey($_) }).Count)
        }
    }

    It 'opens its worker runspaces once per attempt: later calls reuse them (growing when they ask for more) with fresh variables, and the attempt lets go of them idle' {
        Reset-KeptWorkers
        $root = New-Root
        $out = Join-Path $TestDrive 'pool.json'
        $here = Join-Path $TestDrive 'pool-location'
        $null = New-Item -ItemType Directory $here
        $script = Join-Path $TestDrive 'pool.ps1'
        Set-Content $script @'
param($Config, [string] $OutPath, [string] $Here)
$before = @(Get-Runspace).InstanceId
$first = @(1..4 | Invoke-RunItem -Key { "a$_" } -Step first -ThrottleLimit 2 {
    $global:leftover = 'set by the first call'
    "$([runspace]::DefaultRunspace.InstanceId)"
})
$afterFirst = @(Get-Runspace).InstanceId
Set-Location -LiteralPath $Here
$n = 7
$second = @(1..4 | Invoke-RunItem -Key { "b$_" } -Step second -ThrottleLimit 2 {
    "$([runspace]::DefaultRunspace.InstanceId)|$global:leftover|$using:n|$((Get-Location).Path)"
})
foreach ($i in 1..20) { $null = 1..8 | Invoke-RunItem -Key { "c$_" } -Step "loop$i" -ThrottleLimit 4 { $_ } }
$afterLoop = @(Get-Runspace).InstanceId
[pscustomobject]@{
    Before = @($before | ForEach-Object { "$_" }); AfterFirst = @($afterFirst | ForEach-Object { "$_" }); AfterLoop = @($afterLoop | ForEach-Object { "$_" })
    First = $first; Second = $second
} | ConvertTo-Json -Depth 3 | Set-Content $OutPath
'@
        $runspacesBefore = @(Get-Runspace).InstanceId
        # The run script runs in this runspace, so its Set-Location moves this one (as a script's would): put it back.
        Push-Location
        try { $run = Start-Run -Name pool -ScriptPath $script -Root $root -Parameters @{ OutPath = $out; Here = $here } }
        finally { Pop-Location }
        $run.Status | Should -Be 'Completed'
        $seen = Get-Content $out -Raw | ConvertFrom-Json
        $opened = @($seen.AfterFirst | Where-Object { $_ -notin $seen.Before })
        $opened.Count | Should -Be 2 -Because 'the first call opened its two workers'
        $seen.First | Where-Object { $_ -notin $opened } | Should -BeNullOrEmpty
        foreach ($line in $seen.Second) {
            $runspace, $leftover, $using, $location = $line -split '\|'
            $runspace | Should -BeIn $opened -Because 'the second call reuses the workers the first one opened'
            $leftover | Should -BeNullOrEmpty -Because 'variables an earlier call set do not carry over, as in ForEach-Object -Parallel'
            $using | Should -Be '7'
            $location | Should -Be $here -Because 'items run at the run script''s location when the call starts'
        }
        @($seen.AfterLoop | Where-Object { $_ -notin $seen.Before }).Count | Should -Be 4 -Because '20 calls of -ThrottleLimit 4 grew the pool to 4 workers, not 80'
        $kept = Get-NewRunspace $runspacesBefore
        @($kept.InstanceId | ForEach-Object { "$_" } | Sort-Object) | Should -Be @($seen.AfterLoop | Where-Object { $_ -notin $seen.Before } | Sort-Object) -Because 'the attempt kept its 4 workers for the next one, and nothing else'
        Assert-KeptIdle $kept
    }

    It 'lets go of the worker runspaces when the attempt fails, idle, and the resume takes them again' {
        Reset-KeptWorkers
        $root = New-Root
        $script = Join-Path $TestDrive 'pool-fail.ps1'
        Set-Content $script @'
1..6 | Invoke-RunItem -Key { "k$_" } -Step work -ThrottleLimit 3 {
    if ($_ -eq 4 -and (Get-RunContext).Attempt -eq 1) { throw "item $_ failed" }
    $_
}
'@
        $runspacesBefore = @(Get-Runspace).InstanceId
        $run = Start-Run -Name poolfail -ScriptPath $script -Root $root -ErrorAction SilentlyContinue
        $run.Status | Should -Be 'Failed'
        $kept = Get-NewRunspace $runspacesBefore
        $kept.Count | Should -Be 3 -Because 'an item failing cuts no worker off: the failed attempt keeps its three for the next one'
        Assert-KeptIdle $kept
        (Resume-Run -RunId $run.RunId -Root $root).Status | Should -Be 'Completed'
        $after = Get-NewRunspace $runspacesBefore
        @($after.InstanceId | Sort-Object) | Should -Be @($kept.InstanceId | Sort-Object) -Because 'the resume took the kept workers and opened none'
        Assert-KeptIdle $after
    }

    It 'a later Start-Run reuses the workers an earlier one let go of: nothing of the earlier run is seen in them, and they run at the caller''s location' {
        Reset-KeptWorkers
        $root = New-Root
        $out = Join-Path $TestDrive 'reuse.txt'
        $script = Join-Path $TestDrive 'reuse.ps1'
        Set-Content $script @'
param($Config, [string] $Tag, [string] $OutPath, [switch] $Leak)
$lines = @(1..4 | Invoke-RunItem -Key { "k$_" } -Step work -ThrottleLimit 2 {
    $line = "$([runspace]::DefaultRunspace.InstanceId)|$global:leaked|$((Get-RunContext).RunId)|$using:Tag|$((Get-Location).Path)|$($PWD.Path)"
    if ($using:Leak) { $global:leaked = "from $using:Tag" }
    $line
})
Set-Content -LiteralPath $OutPath $lines
'@
        $places = foreach ($name in 'reuse [one]', 'reuse two', 'reuse three') { (New-Item -ItemType Directory -Path (Join-Path $TestDrive $name)).FullName }
        function Invoke-Reuse([string] $Tag, [string] $Place, [switch] $Leak) {
            Push-Location -LiteralPath $Place
            try { $run = Start-Run -Name "reuse-$Tag" -ScriptPath $script -Root $root -Parameters @{ Tag = $Tag; OutPath = $out; Leak = [bool]$Leak } }
            finally { Pop-Location }
            $run.Status | Should -Be 'Completed'
            foreach ($line in Get-Content -LiteralPath $out) {
                $runspace, $leaked, $runId, $tag, $location, $pwdPath = $line -split '\|'
                [pscustomobject]@{ Runspace = $runspace; Leaked = $leaked; RunId = $runId; Tag = $tag; Location = $location; Pwd = $pwdPath; Expected = $run.RunId }
            }
        }

        $before = @(Get-Runspace).InstanceId
        $first = @(Invoke-Reuse one $places[0] -Leak)
        $opened = @(Get-NewRunspace $before | ForEach-Object { "$($_.InstanceId)" })
        $opened.Count | Should -Be 2 -Because 'the first run opened two workers and kept them'
        $first.Runspace | Should -BeIn $opened
        $first.Location | Sort-Object -Unique | Should -Be $places[0] -Because 'items run at the caller''s location (a name with [ ] in it too)'
        $first.Pwd | Sort-Object -Unique | Should -Be $places[0]
        Assert-KeptIdle (Get-NewRunspace $before)

        # The first run's items set $global:leaked; the second's set nothing, so the third starts from workers left clean.
        foreach ($run in @(Invoke-Reuse two $places[1]), @(Invoke-Reuse three $places[2])) {
            foreach ($item in $run) {
                $item.Runspace | Should -BeIn $opened -Because 'a later attempt in this process takes the workers an earlier one kept'
                $item.Leaked | Should -BeNullOrEmpty -Because 'variables of an earlier run are not seen in the next'
                $item.RunId | Should -Be $item.Expected -Because 'a kept worker serves the run that took it'
                $item.Location | Should -Be (@{ two = $places[1]; three = $places[2] })[$item.Tag] -Because 'items run where the caller is when it starts the run'

                $item.Pwd | Should -Be $item.Location -Because '$PWD agrees with Get-Location'
            }
        }
        @(Get-NewRunspace $before | ForEach-Object { "$($_.InstanceId)" } | Sort-Object) | Should -Be @($opened | Sort-Object) -Because 'the later runs opened no worker'
    }

    It 'closes the workers kept for a next attempt when the module is removed, and when they wait unused past the idle time' {
        $root = New-Root
        $script = Join-Path $TestDrive 'kept.ps1'
        Set-Content $script '1..4 | Invoke-RunItem -Key { "k$_" } -Step work -ThrottleLimit 2 { $_ }'
        Reset-KeptWorkers
        $before = @(Get-Runspace).InstanceId
        (Start-Run -Name kept -ScriptPath $script -Root $root).Status | Should -Be 'Completed'
        $kept = Get-NewRunspace $before
        $kept.Count | Should -Be 2
        Remove-Module RunTools
        try { Get-NewRunspace $before | Should -BeNullOrEmpty -Because 'removing the module closed the workers it kept' }
        finally { Import-Module $env:RUNTOOLS_MODULE_PATH }

        $idle = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'RunTools' } |
            ForEach-Object { $_.GetType('RunTools.IdleItemWorkers') } | Where-Object { $_ } | Select-Object -First 1
        $timeout = $idle.GetProperty('IdleTimeout', [Reflection.BindingFlags]'NonPublic, Static')
        $timeout.SetValue($null, [TimeSpan]::FromSeconds(1))
        try {
            (Start-Run -Name kept -ScriptPath $script -Root $root).Status | Should -Be 'Completed'
            (Get-NewRunspace $before).Count | Should -Be 2
            Wait-Until { (Get-NewRunspace $before).Count -eq 0 } -Seconds 20
        }
        finally { $timeout.SetValue($null, [TimeSpan]::FromSeconds(60)) }
    }

    It 'imports in the pooled workers a module the run script imported after they opened' {
        $root = New-Root
        $module = Join-Path $TestDrive 'LateModule.psm1'
        Set-Content $module 'function Get-Late { "late $args" }'
        $out = Join-Path $TestDrive 'late.txt'
        $script = Join-Path $TestDrive 'late.ps1'
        Set-Content $script @'
param($Config, [string] $ModulePath, [string] $OutPath)
$null = 1..2 | Invoke-RunItem -Key { "a$_" } -Step first -ThrottleLimit 2 { $_ }
Import-Module $ModulePath
$late = @(1..4 | Invoke-RunItem -Key { "b$_" } -Step second -ThrottleLimit 2 { Get-Late $_ })
Set-Content $OutPath ($late | Sort-Object)
'@
        $run = Start-Run -Name late -ScriptPath $script -Root $root -Parameters @{ ModulePath = $module; OutPath = $out }
        $run.Status | Should -Be 'Completed'
        Get-Content $out | Should -Be @('late 1', 'late 2', 'late 3', 'late 4')
        Get-Module LateModule | Remove-Module
    }

    It 'closes the worker runspaces of a run started with -AsJob when its attempt ends' {
        $root = New-Root
        $out = Join-Path $TestDrive 'asjob-runspaces.txt'
        $script = Join-Path $TestDrive 'asjob-pool.ps1'
        Set-Content $script @'
param($Config, [string] $OutPath)
$ids = @(1..6 | Invoke-RunItem -Key { "k$_" } -Step work -ThrottleLimit 3 { "$([runspace]::DefaultRunspace.InstanceId)" })
Set-Content $OutPath ($ids | Sort-Object -Unique)
'@
        $job = Start-Run -Name asjobpool -ScriptPath $script -Root $root -Parameters @{ OutPath = $out } -AsJob
        $info = Receive-Job $job -Wait
        $info.Status | Should -Be 'Completed'
        $workers = @(Get-Content $out)
        $workers.Count | Should -BeGreaterThan 0
        $open = @(Get-Runspace | ForEach-Object { "$($_.InstanceId)" })
        $workers | Where-Object { $_ -in $open } | Should -BeNullOrEmpty -Because 'the job''s attempt closed the workers it opened'
        Remove-Job $job
    }
}
