<#
    The cmdlet contract of a run's life, for either store: run folders (the default), or a
    PostgreSQL database when RUNTOOLS_TEST_STORE is 'postgresql' (tests/StoreContract.Tests.ps1
    runs this file so in a child pwsh, against the cluster RUNTOOLS_TEST_PG names). Each test gets
    a root of its own: a folder, or a fresh schema with a 3-second lease (so that a killed owner's
    run reads Interrupted soon). What only one store has (a run folder's files, completion from a
    folder) is checked for that store only.
#>
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $script:itemsScript = Join-Path $PSScriptRoot 'scripts/items.ps1'
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force # New-TestRoot, Get-RunFolder
    $script:store = if ($env:RUNTOOLS_TEST_STORE) { $env:RUNTOOLS_TEST_STORE } else { 'folder' }

    function New-Root { New-TestRoot -Under $TestDrive -Prefix lc_ }


    # A child pwsh (the real one: a SIGKILL reaches the lock holder) that imports the module and
    # runs one command line; used to crash, stop and race.
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

    function Get-EffectCounts([string] $Path) {
        $counts = @{}
        if (Test-Path $Path) { Get-Content $Path | Where-Object { $_ } | ForEach-Object { $counts[$_] = 1 + [int]$counts[$_] } }
        $counts
    }
}

Describe 'Start-Run' {
    It 'creates the run, executes the script and returns only the final RunInfo' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'start.txt'
        $result = @(Start-Run -Name items -ScriptPath $itemsScript -Root $root -Parameters @{ EffectsPath = $effects; Count = 5 } -Config @{ retries = 2 })
        $result.Count | Should -Be 1
        $result[0] | Should -BeOfType ([RunTools.RunInfo])
        $result[0].Status | Should -Be 'Completed'
        $result[0].ItemsCompleted | Should -Be 5
        $result[0].StepsCompleted | Should -Be 3
        (Get-EffectCounts $effects).Count | Should -Be 5
        Get-Content (Join-Path (Get-RunFolder $result[0]) 'logs/attempt-1.log') -Raw | Should -Match 'OUTPUT: done k001'
        Test-Path (Join-Path (Get-RunFolder $result[0]) 'config.json') | Should -BeTrue
    }

    It 'passes the effective config as $Config and -Parameters to the script; Get-RunContext describes the run' {
        $root = New-Root
        $script = Join-Path $TestDrive 'context.ps1'
        $out = Join-Path $TestDrive 'context.json'
        Set-Content $script @'
param($Config, $Greeting)
$context = Get-RunContext
[pscustomobject]@{ Model = $Config.generator.model; Greeting = $Greeting; RunId = $context.RunId; Attempt = $context.Attempt; Resume = $context.IsResume } |
    ConvertTo-Json | Set-Content $env:RT_CONTEXT_OUT
'@
        $env:RT_CONTEXT_OUT = $out
        $yaml = Join-Path $TestDrive 'config.yaml'
        Set-Content $yaml "generator:`n  model: v1`n"
        $run = Start-Run -Name ctx -ScriptPath $script -Root $root -Config $yaml -Parameters @{ Greeting = 'hi' } -RunId 'ctx-1'
        $seen = Get-Content $out | ConvertFrom-Json
        $seen.Model | Should -Be 'v1'
        $seen.Greeting | Should -Be 'hi'
        $seen.RunId | Should -Be 'ctx-1'
        $seen.Attempt | Should -Be 1
        $seen.Resume | Should -BeFalse
        if ($script:store -eq 'folder') {
            # A run folder keeps the config's source file too; a database keeps the effective config only.
            Get-Content (Join-Path $run.Path 'config.source.yaml') -Raw | Should -Match 'model: v1'
        }
    }

    It 'accepts a .psd1 and a .json config' {
        $root = New-Root
        $psd1 = Join-Path $TestDrive 'c.psd1'
        Set-Content $psd1 "@{ source = @{ files = 3 }; title = 'x' }"
        $json = Join-Path $TestDrive 'c.json'
        '{"title":"x","source":{"files":3}}' | Set-Content $json
        $script = Join-Path $TestDrive 'noop.ps1'
        Set-Content $script 'param($Config) Invoke-RunStep only { $Config.source.files }'
        $a = Start-Run -Name a -ScriptPath $script -Root $root -Config $psd1
        $b = Start-Run -Name b -ScriptPath $script -Root $root -Config $json
        $a.ConfigHash | Should -Be $b.ConfigHash
        $a.Status | Should -Be 'Completed'
    }

    It 'writes RunFailed and returns a Failed RunInfo when the script throws' {
        $root = New-Root
        $script = Join-Path $TestDrive 'fails.ps1'
        Set-Content $script "Invoke-RunStep one { 1 }`nInvoke-RunStep two { throw 'disk on fire' }"
        $run = Start-Run -Name f -ScriptPath $script -Root $root -ErrorVariable failures -ErrorAction SilentlyContinue
        $run.Status | Should -Be 'Failed'
        $failures[0].FullyQualifiedErrorId | Should -BeLike 'RunFailed*'
        $failures[0].Exception.Message | Should -Match 'disk on fire'
        $failures[0].Exception.Message | Should -Match 'Resume-Run'
        $run.StepsCompleted | Should -Be 1
        { Start-Run -Name f -ScriptPath $script -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'RunFailed*'
    }

    It 'fails clearly on a missing script, a bad config, a bad or taken run id' {
        $root = New-Root
        $script = Join-Path $TestDrive 'ok.ps1'
        Set-Content $script '1'
        { Start-Run -Name x -ScriptPath (Join-Path $TestDrive 'missing.ps1') -Root $root } | Should -Throw -ErrorId 'ScriptNotFound*'
        $bad = Join-Path $TestDrive 'bad.yaml'
        Set-Content $bad "a: 1`nb: [1, 2`n"
        $err = { Start-Run -Name x -ScriptPath $script -Root $root -Config $bad } | Should -Throw -ErrorId 'InvalidConfig*' -PassThru
        $err.Exception.Message | Should -Match 'line \d+, column \d+'
        { Start-Run -Name x -ScriptPath $script -Root $root -RunId '../up' } | Should -Throw -ErrorId 'InvalidRunId*'
        $null = Start-Run -Name x -ScriptPath $script -Root $root -RunId taken
        { Start-Run -Name x -ScriptPath $script -Root $root -RunId taken } | Should -Throw -ErrorId 'RunExists*'
    }

    It 'ends the whole script when a step fails: later statements and steps do not run' {
        $root = New-Root
        $script = Join-Path $TestDrive 'endsonfail.ps1'
        $marker = Join-Path $TestDrive 'after-fail.txt'
        Set-Content $script "Invoke-RunStep one { throw 'boom' }`nSet-Content '$marker' 'ran'`nInvoke-RunStep two { 2 }"
        $run = Start-Run -Name e -ScriptPath $script -Root $root -ErrorAction SilentlyContinue
        $run.Status | Should -Be 'Failed'
        $run.Error | Should -Match "step 'one' failed: boom"
        Test-Path $marker | Should -BeFalse
        Get-RunEvent -RunId $run.RunId -Root $root -Type step_started | ForEach-Object Step | Should -Be 'one'
    }

    It 'ends the whole script after a step with failed items; the other items completed' {
        $root = New-Root
        $script = Join-Path $TestDrive 'itemfail.ps1'
        # A failed item is a non-terminating error: with 'Continue' the other items still run.
        Set-Content $script "`$ErrorActionPreference = 'Continue'`n1..4 | Invoke-RunItem -Key { `$_ } -Step items { if (`$_ -eq 2) { throw 'bad item' } `$_ }`nInvoke-RunStep after { 'after' }"
        $run = Start-Run -Name i -ScriptPath $script -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue
        $run.Status | Should -Be 'Failed'
        $run.ItemsCompleted | Should -Be 3
        $errors.FullyQualifiedErrorId | Should -Contain 'RunFailed,RunTools.StartRunCommand'
        (Get-RunEvent -RunId $run.RunId -Root $root -Type step_started).Step | Should -Not -Contain 'after'
        (Get-RunEvent -RunId $run.RunId -Root $root -Type item_failed).Key | Should -Be '2'
    }

    It 'runs only the gated steps' {
        $root = New-Root
        $script = Join-Path $TestDrive 'gated.ps1'
        Set-Content $script "Invoke-RunStep a { 'a' }`nInvoke-RunStep b { 'b' }`nInvoke-RunStep c { 'c' }"
        $run = Start-Run -Name g -ScriptPath $script -Root $root -Step b
        $run.Status | Should -Be 'Stopped'
        (Get-RunEvent -RunId $run.RunId -Root $root -Type step_completed).Step | Should -Be 'b'
        $resumed = Resume-Run -RunId $run.RunId -Root $root -FromStep a
        $resumed.Status | Should -Be 'Completed'
    }
}

Describe 'Resume-Run' {
    It 'continues a failed run without redoing finished work, and replays step output' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'resume.txt'
        $flag = Join-Path $TestDrive 'fail.flag'
        Set-Content $flag 'x'
        $params = @{ EffectsPath = $effects; Count = 10; FailOn = 'k004'; FailFlag = $flag }
        $first = Start-Run -Name r -ScriptPath $itemsScript -Root $root -Parameters $params -ErrorAction SilentlyContinue
        $first.Status | Should -Be 'Failed'
        $stamp = Get-Content "$effects.prepared"
        Remove-Item $flag
        $second = Resume-Run -RunId $first.RunId -Root $root -Parameters $params
        $second.Status | Should -Be 'Completed'
        $second.Attempt | Should -Be 2
        Get-Content "$effects.prepared" | Should -Be $stamp   # the step was replayed, not re-run
        $counts = Get-EffectCounts $effects
        $counts.Count | Should -Be 10
        $counts.Values | Should -Not -Contain 2
    }

    It 'resumes from the pipeline: Get-Run | Where-Object Status -eq Stopped | Resume-Run' {
        $root = New-Root
        $script = Join-Path $TestDrive 'gated2.ps1'
        Set-Content $script "Invoke-RunStep a { 1 }`nInvoke-RunStep b { 2 }"
        $null = Start-Run -Name p1 -ScriptPath $script -Root $root -Step a
        $null = Start-Run -Name p2 -ScriptPath $script -Root $root -Step a
        $resumed = Get-Run -Root $root | Where-Object Status -eq Stopped | Resume-Run
        $resumed.Count | Should -Be 2
        $resumed.Status | Should -Be @('Completed', 'Completed')
    }

    It 'says so for a completed run, with no error and nothing done' {
        $root = New-Root
        $script = Join-Path $TestDrive 'done.ps1'
        Set-Content $script "Invoke-RunStep a { 1 }"
        $run = Start-Run -Name d -ScriptPath $script -Root $root
        $again = Resume-Run -RunId $run.RunId -Root $root -WarningVariable warnings -ErrorVariable errors -WarningAction SilentlyContinue
        $errors | Should -BeNullOrEmpty
        $warnings | Should -Match 'already completed'
        $again.Attempt | Should -Be 1
    }

    It 'refuses config drift naming the changed keys, and continues with -Force' {
        $root = New-Root
        $yaml = Join-Path $TestDrive 'drift.yaml'
        Set-Content $yaml "generator:`n  model: v1`nauditor:`n  threshold: 0.5`n"
        $script = Join-Path $TestDrive 'drift.ps1'
        Set-Content $script "Invoke-RunStep a { 1 }`nInvoke-RunStep b { 2 }"
        $run = Start-Run -Name d -ScriptPath $script -Root $root -Config $yaml -Step a
        Set-Content $yaml "generator:`n  model: v2`nauditor:`n  threshold: 0.5`n  retries: 3`n"
        $err = { Resume-Run -RunId $run.RunId -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'ConfigDrift*' -PassThru
        $err.Exception.Message | Should -Match 'Changed: generator.model; Added: auditor.retries'
        $err.Exception.Message | Should -Match '-Force'
        $forced = Resume-Run -RunId $run.RunId -Root $root -Force -WarningAction SilentlyContinue
        $forced.Status | Should -Be 'Completed'
        (Get-RunEvent -RunId $run.RunId -Root $root -Type drift_accepted).Data.kind | Should -Be 'config'
    }

    It 'refuses script drift and continues with -Force' {
        $root = New-Root
        $script = Join-Path $TestDrive 'sdrift.ps1'
        Set-Content $script "Invoke-RunStep a { 1 }`nInvoke-RunStep b { 2 }"
        $run = Start-Run -Name s -ScriptPath $script -Root $root -Step a
        Add-Content $script "Invoke-RunStep c { 3 }"
        { Resume-Run -RunId $run.RunId -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'ScriptDrift*'
        (Resume-Run -RunId $run.RunId -Root $root -Force -WarningAction SilentlyContinue).StepsCompleted | Should -Be 3
    }

    It 'writes RunNotFound and InvalidRunId for bad ids' {
        { Resume-Run -RunId nope -Root (New-Root) -ErrorAction Stop } | Should -Throw -ErrorId 'RunNotFound*'
        { Resume-Run -RunId 'a/b' -Root (New-Root) -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidRunId*'
    }
}

Describe 'A real crash: a child pwsh is killed (SIGKILL) in the middle of its items' {
    # 'mid-item': k010 has done its side effect and waits, so the kill lands inside it for certain.
    # 'at random': the kill lands wherever the child is after 10 side effects (items take 40 ms).
    It 'reads as Interrupted, resumes to the end, and repeats only what was in doubt (<Policy>, kill <Kill>)' -ForEach @(
        @{ Policy = 'Retry'; Kill = 'mid-item' }, @{ Policy = 'Skip'; Kill = 'mid-item' }
        @{ Policy = 'Retry'; Kill = 'at random' }, @{ Policy = 'Skip'; Kill = 'at random' }
    ) {
        $root = New-Root
        $effects = Join-Path $TestDrive "crash-$Policy-$($Kill -replace ' ').txt"
        $hang = if ($Kill -eq 'mid-item') { 'k010' } else { '' }
        $child = Start-Child "Start-Run -Name crash -RunId crash -ScriptPath '$itemsScript' -Root '$root' -Parameters @{ EffectsPath = '$effects'; Count = 50; DelayMilliseconds = 40; HangOn = '$hang' }"
        Wait-Until { (Get-EffectCounts $effects).Count -ge 10 } -Child $child
        Stop-ChildPwsh $child   # SIGKILL: no cleanup, no finally
        $killedAt = (Get-EffectCounts $effects).Count
        $killedAt | Should -BeLessThan 50
        $completedBefore = @((Get-RunEvent -RunId crash -Root $root -Type item_completed).Key)
        $inDoubt = @((Get-RunEvent -RunId crash -Root $root -Type item_started).Key | Where-Object { $_ -notin $completedBefore })
        if ($Kill -eq 'mid-item') { $inDoubt | Should -Be @('k010') } else { $inDoubt.Count | Should -BeLessOrEqual 1 }

        Wait-RunInterrupted crash $root | Should -Be 'Interrupted'
        $final = Resume-Run -RunId crash -Root $root -InDoubt $Policy -Parameters @{ EffectsPath = $effects; Count = 50 } -Force -WarningAction SilentlyContinue
        $final.Status | Should -Be 'Completed'

        $counts = Get-EffectCounts $effects
        $repeated = @($counts.Keys | Where-Object { $counts[$_] -gt 1 })
        $resolved = Get-RunEvent -RunId crash -Root $root -Type item_resolved
        @($resolved.Key) | Should -Be $inDoubt -Because 'every key in doubt, and only those, is resolved by the policy'
        $repeated | Where-Object { $_ -notin $inDoubt } | Should -BeNullOrEmpty -Because 'only a key in doubt may be repeated'
        if ($Policy -eq 'Retry') {
            $counts.Count | Should -Be 50
            # k010 had done its side effect when it was killed, so Retry repeats it; a random kill
            # may land before an in-doubt item's side effect, which then happens once.
            if ($Kill -eq 'mid-item') { $repeated | Should -Be @('k010') }
        } else {
            $repeated.Count | Should -Be 0
            $counts.Count | Should -Be (50 - @($inDoubt | Where-Object { -not $counts.ContainsKey($_) }).Count)
        }
        $completedBefore | Where-Object { $counts[$_] -ne 1 } | Should -BeNullOrEmpty -Because 'a completed item is never redone'
        (Get-RunEvent -RunId crash -Root $root -Type item_completed | Group-Object Key | Where-Object Count -gt 1) | Should -BeNullOrEmpty
    }
}

Describe 'Stop-Run' {
    It 'stops a run in another process at the next item boundary, and nothing is lost' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'stop.txt'
        $child = Start-Child "Start-Run -Name stopme -RunId stopme -ScriptPath '$itemsScript' -Root '$root' -Parameters @{ EffectsPath = '$effects'; Count = 50; DelayMilliseconds = 40 }"
        Wait-Until { (Get-EffectCounts $effects).Count -ge 5 } -Child $child
        $info = Stop-Run -RunId stopme -Root $root -Reason 'maintenance' -PassThru
        $info.Status | Should -BeIn @('Stopping', 'Stopped')
        Wait-ChildPwsh $child -TimeoutSec 60 | Should -Be 0
        $stopped = Get-Run -RunId stopme -Root $root
        $stopped.Status | Should -Be 'Stopped'
        (Get-RunEvent -RunId stopme -Root $root -Type run_stopped).Data.reason | Should -Be 'maintenance'
        $final = Resume-Run -RunId stopme -Root $root -Parameters @{ EffectsPath = $effects; Count = 50 } -Force -WarningAction SilentlyContinue
        $final.Status | Should -Be 'Completed'
        $counts = Get-EffectCounts $effects
        $counts.Count | Should -Be 50
        $counts.Values | Should -Not -Contain 2
    }

    It 'makes a second Resume-Run fail at once naming the owner, and -WhatIf changes nothing' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'lock.txt'
        $child = Start-Child "Start-Run -Name busy -RunId busy -ScriptPath '$itemsScript' -Root '$root' -Parameters @{ EffectsPath = '$effects'; Count = 200; DelayMilliseconds = 50 }"
        try {
            Wait-Until { (Get-EffectCounts $effects).Count -ge 2 } -Child $child
            $err = { Resume-Run -RunId busy -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'RunLocked*' -PassThru
            $err.Exception.Message | Should -Match "process $($child.Id)@"
            (Get-Run -RunId busy -Root $root).Owner | Should -BeLike "$($child.Id)@*"
            Stop-Run -RunId busy -Root $root -WhatIf
            (Get-Run -RunId busy -Root $root).Status | Should -Be 'Running' -Because 'no stop was requested'
            if ($script:store -eq 'folder') { Test-Path (Join-Path $root 'busy/stop') | Should -BeFalse }
            { Remove-Run -RunId busy -Root $root -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'RunLocked*'
        } finally {
            Stop-ChildPwsh $child
        }
    }

    It 'records Stopped when the pipeline is stopped (Ctrl+C), leaving the interrupted item in doubt' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'ctrlc.txt'
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$env:RUNTOOLS_MODULE_PATH'; Start-Run -Name ctrlc -RunId ctrlc -ScriptPath '$itemsScript' -Root '$root' -Parameters @{ EffectsPath = '$effects'; Count = 50; DelayMilliseconds = 100 }")
        $handle = $ps.BeginInvoke()
        try {
            Wait-Until { (Get-EffectCounts $effects).Count -ge 3 }
            $ps.Stop()   # what Ctrl+C does to the running pipeline
        } finally {
            try { $null = $ps.EndInvoke($handle) } catch { }
            $ps.Dispose()
        }
        $run = Get-Run -RunId ctrlc -Root $root
        $run.Status | Should -Be 'Stopped'
        (Get-RunEvent -RunId ctrlc -Root $root -Type run_stopped).Data.requested_by | Should -Be 'Ctrl+C'
        $final = Resume-Run -RunId ctrlc -Root $root -Parameters @{ EffectsPath = $effects; Count = 50 } -Force -WarningAction SilentlyContinue
        $final.Status | Should -Be 'Completed'
        (Get-EffectCounts $effects).Count | Should -Be 50
    }

    It 'ends the whole script at a stop request, even inside try/catch' {
        $root = New-Root
        $script = Join-Path $TestDrive 'stopinside.ps1'
        $caught = Join-Path $TestDrive 'caught.txt'
        $after = Join-Path $TestDrive 'after-stop.txt'
        Set-Content $script @"
try {
    1..10 | Invoke-RunItem -Key { `$_ } -Step s { if (`$_ -eq 3) { Stop-Run -RunId (Get-RunContext).RunId -Root '$root' -Reason inside } ; `$_ }
} catch { Set-Content '$caught' 'caught' }
Set-Content '$after' 'ran'
"@
        $run = Start-Run -Name s -ScriptPath $script -Root $root
        $run.Status | Should -Be 'Stopped'
        $run.ItemsCompleted | Should -Be 3
        Test-Path $caught | Should -BeFalse
        Test-Path $after | Should -BeFalse
    }

    It 'writes RunNotRunning for a run that is not running' {
        $root = New-Root
        $script = Join-Path $TestDrive 'quick.ps1'
        Set-Content $script '1'
        $run = Start-Run -Name q -ScriptPath $script -Root $root
        { Stop-Run -RunId $run.RunId -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'RunNotRunning*'
    }
}

Describe 'Remove-Run and Get-RunEvent' {
    It 'removes runs (ConfirmImpact High) and keeps them with -WhatIf' {
        $root = New-Root
        $script = Join-Path $TestDrive 'rm.ps1'
        Set-Content $script '1'
        $run = Start-Run -Name rm -ScriptPath $script -Root $root
        Remove-Run -RunId $run.RunId -Root $root -WhatIf
        @(Get-Run -Root $root).RunId | Should -Be $run.RunId
        if ($script:store -eq 'folder') { Test-Path $run.Path | Should -BeTrue }
        $run | Remove-Run -Confirm:$false
        @(Get-Run -Root $root) | Should -BeNullOrEmpty
        if ($script:store -eq 'folder') { Test-Path $run.Path | Should -BeFalse }
        (Get-Command Remove-Run).ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $false)[0].ConfirmImpact | Should -Be 'High'
    }

    It 'returns typed journal events filtered by type and step' {
        $root = New-Root
        $run = Start-Run -Name ev -ScriptPath $itemsScript -Root $root -Parameters @{ EffectsPath = (Join-Path $TestDrive 'ev.txt'); Count = 3 }
        $events = Get-RunEvent -RunId $run.RunId -Root $root
        $events[0] | Should -BeOfType ([RunTools.RunEvent])
        $events[0].Type | Should -Be 'run_created'
        ($events.Sequence | Sort-Object) | Should -Be $events.Sequence
        (Get-RunEvent -RunId $run.RunId -Root $root -Type 'item_*' -Step work).Count | Should -Be 6
        (Get-RunEvent -RunId $run.RunId -Root $root -Last 1).Type | Should -Be 'run_completed'
        ($run | Get-RunEvent -Type run_created).Data.name | Should -Be 'ev'
    }
}

Describe 'In-script cmdlets' {
    It 'fail with NotInRun outside a run' {
        { Invoke-RunStep x { 1 } } | Should -Throw -ErrorId 'NotInRun*'
        { 1 | Invoke-RunItem -Key { $_ } -Step s { $_ } } | Should -Throw -ErrorId 'NotInRun*'
        { Add-RunArtifact -Path $PSCommandPath } | Should -Throw -ErrorId 'NotInRun*'
        { Get-RunContext } | Should -Throw -ErrorId 'NotInRun*'
    }

    It 'record artifacts, replay step output as the same values, and keep item keys once' {
        $root = New-Root
        $script = Join-Path $TestDrive 'inscript.ps1'
        $marker = Join-Path $TestDrive 'inscript.flag'
        Set-Content $marker 'x'
        Set-Content $script @"
`$files = Invoke-RunStep list { [pscustomobject]@{ Name = 'a'; Size = 1 }, [pscustomobject]@{ Name = 'b'; Size = 2 } }
`$sizes = `$files | Invoke-RunItem -Key Name -Step sizes { `$_.Size * 10 }
Invoke-RunStep report {
    Set-Content (Join-Path '$TestDrive' 'report.txt') "total `$((`$sizes | Measure-Object -Sum).Sum)"
    Add-RunArtifact -Path (Join-Path '$TestDrive' 'report.txt') -Name reports/total.txt
    if (Test-Path '$marker') { throw 'stop after the artifact' }
}
"@
        $first = Start-Run -Name in -ScriptPath $script -Root $root -ErrorAction SilentlyContinue
        $first.Status | Should -Be 'Failed'
        Remove-Item $marker
        $second = Resume-Run -RunId $first.RunId -Root $root
        $second.Status | Should -Be 'Completed'
        Get-Content (Join-Path $TestDrive 'report.txt') | Should -Be 'total 30'   # replayed values fed the report
        $artifact = Get-RunEvent -RunId $first.RunId -Root $root -Type artifact_added | Select-Object -Last 1
        $artifact.Data.name | Should -Be 'reports/total.txt'
        $artifact.Data.sha256 | Should -Be (Get-FileHash (Join-Path $TestDrive 'report.txt') -Algorithm SHA256).Hash.ToLowerInvariant()
        (Get-RunEvent -RunId $first.RunId -Root $root -Type item_completed).Count | Should -Be 2
    }
}

Describe 'Error ids' {
    It 'InDoubtItems: -InDoubt Fail refuses a run with an item in doubt and names it' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'doubt.txt'
        $child = Start-Child "Start-Run -Name doubt -RunId doubt -ScriptPath '$itemsScript' -Root '$root' -Parameters @{ EffectsPath = '$effects'; Count = 50; HangOn = 'k002' }"
        Wait-Until { (Get-EffectCounts $effects).ContainsKey('k002') } -Child $child
        Stop-ChildPwsh $child   # k002 did its side effect and waits: killed mid-item, for certain
        $doubt = @((Get-RunEvent -RunId doubt -Root $root -Type item_started).Key | Where-Object { $_ -notin (Get-RunEvent -RunId doubt -Root $root -Type item_completed).Key })
        $doubt | Should -Be @('k002')
        Wait-RunInterrupted doubt $root | Should -Be 'Interrupted'
        $err = { Resume-Run -RunId doubt -Root $root -InDoubt Fail -ErrorAction Stop -WarningAction SilentlyContinue } | Should -Throw -ErrorId 'InDoubtItems*' -PassThru
        $err.Exception.Message | Should -Match ([regex]::Escape('work/k002'))
        (Get-Run -RunId doubt -Root $root).Status | Should -Be 'Interrupted' -Because 'a refused resume changes nothing'
        { Resume-Run -RunId doubt -Root $root -InDoubt Sometimes -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidArgument*'
    }

    It '<ErrorId>: the run ends Failed with RunFailed, whose inner error is <ErrorId> with its message' -ForEach @(
        @{ ErrorId = 'InvalidStepName'; Body = "Invoke-RunStep '../x' { 1 }"; Message = 'not a valid step name' }
        @{ ErrorId = 'StepNested'; Body = "Invoke-RunStep a { Invoke-RunStep b { 1 } }"; Message = 'Steps do not nest' }
        @{ ErrorId = 'InvalidItemKey'; Body = "'' | Invoke-RunItem -Key { `$_ } -Step s { 1 }"; Message = 'key of item' }
        @{ ErrorId = 'ArtifactNotFound'; Body = "Invoke-RunStep a { Add-RunArtifact -Path '/no/such/file' -ErrorAction Stop }"; Message = 'does not exist' }
        @{ ErrorId = 'InvalidArtifactName'; Body = "Invoke-RunStep a { Add-RunArtifact -Path `$PSCommandPath -Name '../escape' -ErrorAction Stop }"; Message = 'not a valid artifact name' }
    ) {
        $root = New-Root
        $script = Join-Path $TestDrive "err-$([guid]::NewGuid().ToString('N').Substring(0, 6)).ps1"
        Set-Content $script $Body
        $run = Start-Run -Name e -ScriptPath $script -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue
        $run.Status | Should -Be 'Failed'
        $run.Error | Should -Match $Message
        $errors[-1].FullyQualifiedErrorId | Should -BeLike 'RunFailed,*'
        $errors[-1].Exception.InnerException.ErrorId | Should -Be $ErrorId
        $errors[-1].Exception.InnerException.Message | Should -Match $Message
        (Get-RunEvent -RunId $run.RunId -Root $root -Type run_failed).Data.error | Should -Match $Message
    }
}

Describe 'PowerShell conventions' {
    BeforeAll {
        $commands = Get-Command -Module RunTools
    }

    It 'exports its cmdlets, each a sealed VerbNounCommand class with [OutputType]' {
        $commands.Name | Sort-Object | Should -Be (@('Add-RunArtifact', 'Compare-Run', 'ConvertTo-Run', 'Export-RunArchive', 'Get-Run', 'Get-RunContext', 'Get-RunEvent', 'Import-RunArchive', 'Invoke-RunItem', 'Invoke-RunStep', 'Join-Run', 'Remove-Run', 'Resume-Run', 'Start-Run', 'Stop-Run', 'Test-Run', 'Wait-Run') | Sort-Object)
        foreach ($command in $commands) {
            $type = $command.ImplementingType
            $type.IsSealed | Should -BeTrue -Because $command.Name
            $type.Name | Should -Be (($command.Name -replace '-', '') + 'Command')
            $command.OutputType.Count | Should -BeGreaterThan 0 -Because $command.Name
        }
    }

    It 'shows events and artifacts in tables and RunInfo with a default display set' {
        $root = New-Root
        $script = Join-Path $TestDrive 'views.ps1'
        Set-Content $script "Invoke-RunStep a { Add-RunArtifact -Path `$PSCommandPath -Name 'copy.ps1' }"
        $run = Start-Run -Name v -ScriptPath $script -Root $root
        Get-RunEvent -RunId $run.RunId -Root $root | Format-Table | Out-String -Width 200 | Should -Match 'Sequence\s+Timestamp\s+Type\s+Attempt\s+Step\s+Key'
        ($run | Format-List | Out-String) | Should -Match 'ItemsCompleted'
        ($run | Format-List | Out-String) | Should -Not -Match 'ConfigHash'
        $run.Id | Should -Be $run.RunId
    }

    # ShouldProcess on destructive verbs and RunId/Root by property name: generated from Get-Command in Selection.Tests.ps1.

    It 'completes run ids and names on the command line' {
        $root = New-Root
        $script = Join-Path $TestDrive 'tab.ps1'
        Set-Content $script '1'
        $null = Start-Run -Name 'tab completion' -ScriptPath $script -Root $root -RunId 'tab-one'
        $line = "Resume-Run -Root '$root' -RunId tab-"
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Contain 'tab-one'
        $line = "Stop-Run -Root '$root' -Name tab"
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Contain "'tab completion'"
        if ($script:store -ne 'folder') { return } # a database root is not relative to a location
        Push-Location (Split-Path $root)
        try {
            $line = "Get-RunEvent -Root ./$(Split-Path $root -Leaf) -RunId tab"   # relative to the PowerShell location
            (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Contain 'tab-one'
        } finally { Pop-Location }
    }
}

Describe 'Get-Run with an id and a status' {
    It 'returns nothing and no error for an existing run the -Status leaves out, and RunNotFound only for an id no run has' {
        $root = New-Root
        $script = Join-Path $TestDrive 'id-status.ps1'
        Set-Content $script 'Invoke-RunStep a { 1 }'
        $null = Start-Run -Name idstatus -RunId done-1 -ScriptPath $script -Root $root
        $found = @(Get-Run -Root $root -RunId done-1, absent-1 -Status Failed -ErrorVariable errors -ErrorAction SilentlyContinue)
        $found.Count | Should -Be 0
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'RunNotFound,RunTools.GetRunCommand'
        $errors[0].TargetObject | Should -Be 'absent-1'
        (Get-Run -Root $root -RunId done-1 -Status Completed).RunId | Should -Be 'done-1'
    }
}
