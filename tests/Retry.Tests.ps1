BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force

    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    # A folder, or with RUNTOOLS_TEST_STORE 'postgresql' a fresh schema (tests/StoreContract.Tests.ps1).
    function New-Root { New-TestRoot -Under $TestDrive }

    # Writes a run script and starts it; returns the final RunInfo (a failed run is returned, not thrown).
    function Invoke-Job([string] $Body, [string] $Root = (New-Root), [int] $TimeoutSec = 0) {
        $script = Join-Path $TestDrive "job-$([guid]::NewGuid().ToString('N').Substring(0, 6)).ps1"
        Set-Content $script $Body
        $info = Start-Run -Name retry -ScriptPath $script -Root $Root -TimeoutSec $TimeoutSec -ErrorAction SilentlyContinue -ErrorVariable runErrors -WarningAction SilentlyContinue
        if (-not $info) { $info = Get-Run -Root $Root | Select-Object -First 1 }
        [pscustomobject]@{ Info = $info; Errors = $runErrors; Script = $script; Root = $Root }
    }

    function Get-Events($Job, [string] $Type) {
        Get-RunEvent -Root $Job.Root -RunId $Job.Info.RunId | Where-Object Type -EQ $Type
    }

    # Counts the lines a unit appended to a file in the run directory (one per try).
    function Get-Tries($Job, [string] $Name) { @(Get-Content (Join-Path (Get-RunFolder $Job.Info) $Name) -ErrorAction SilentlyContinue).Count }
}

Describe 'Retries' {
    It 'retries a failing item up to -MaxTries, journaling each failed try with its ErrorId and the wait before the next' {
        $job = Invoke-Job @'
1..3 | Invoke-RunItem -Step work -Key { $_ } -MaxTries 3 -RetryDelay 0.05 {
    $tries = Join-Path (Get-RunContext).Path "tries-$_.txt"
    Add-Content $tries 'x'
    if ($_ -eq 2 -and @(Get-Content $tries).Count -lt 3) { throw [System.TimeoutException]::new('busy, try later') }
    "done $_"
}
'@
        $job.Info.Status | Should -Be 'Completed'
        $job.Info.ItemsCompleted | Should -Be 3
        Get-Tries $job 'tries-2.txt' | Should -Be 3
        Get-Tries $job 'tries-1.txt' | Should -Be 1
        $failed = @(Get-Events $job 'item_failed')
        $failed.Count | Should -Be 2
        $failed | ForEach-Object { $_.Key | Should -Be '2' }
        $failed[0].Data['error_id'] | Should -Not -BeNullOrEmpty
        $failed[0].Data['retry_in_ms'] | Should -BeGreaterThan 0
        $failed[1].Data['try'] | Should -Be 2
        $started = @(Get-Events $job 'item_started' | Where-Object Key -EQ '2')
        ($started | ForEach-Object { if ($_.Data['try']) { [int]$_.Data['try'] } else { 1 } }) | Should -Be @(1, 2, 3)
    }

    It 'does not retry an error -RetryOn does not name, and fails the unit with the real error and its script line' {
        $job = Invoke-Job @'
1..2 | Invoke-RunItem -Step work -Key { $_ } -MaxTries 5 -RetryDelay 0.05 -RetryOn ([System.IO.IOException]) {
    Add-Content (Join-Path (Get-RunContext).Path "tries-$_.txt") 'x'
    if ($_ -eq 1) { throw [System.ArgumentException]::new('bad input, not transient') }
    "done $_"
}
'@
        $job.Info.Status | Should -Be 'Failed'
        Get-Tries $job 'tries-1.txt' | Should -Be 1
        $failed = @(Get-Events $job 'item_failed')
        $failed.Count | Should -Be 1
        $failed[0].Data['error'] | Should -Match 'bad input, not transient'
        $failed[0].Data['error'] | Should -Match ([regex]::Escape((Split-Path $job.Script -Leaf)) + ':3')
        $failed[0].Data.Contains('retry_in_ms') | Should -BeFalse
    }

    It 'takes -RetryOn as a script block that sees the ErrorRecord as $_, and as exception type names' {
        $job = Invoke-Job @'
Invoke-RunStep first -MaxTries 3 -RetryDelay 0.05 -RetryOn { $_.Exception.Message -like '*again*' } {
    Add-Content (Join-Path (Get-RunContext).Path 'first.txt') 'x'
    if (@(Get-Content (Join-Path (Get-RunContext).Path 'first.txt')).Count -lt 3) { throw 'try again' }
    'first ok'
}
Invoke-RunStep second -MaxTries 3 -RetryDelay 0.05 -RetryOn 'IOException' {
    Add-Content (Join-Path (Get-RunContext).Path 'second.txt') 'x'
    if (@(Get-Content (Join-Path (Get-RunContext).Path 'second.txt')).Count -lt 2) { throw [System.IO.FileNotFoundException]::new('gone for now') }
    'second ok'
}
'@
        $job.Info.Status | Should -Be 'Completed'
        Get-Tries $job 'first.txt' | Should -Be 3
        Get-Tries $job 'second.txt' | Should -Be 2
        @(Get-Events $job 'step_failed').Count | Should -Be 3
        (Get-Events $job 'step_completed' | Where-Object Step -EQ 'first').Data['attempt'] | Should -Be 1
    }

    It 'gives a parallel item''s -RetryOn script block the run script''s $using: values, whether or not the body uses them' {
        $job = Invoke-Job @'
$transient = 'busy, try later'
'a' | Invoke-RunItem -Step work -Key { $_ } -ThrottleLimit 2 -MaxTries 3 -RetryDelay 0 -ErrorAction Continue -RetryOn { $_.Exception.Message -eq $using:transient } {
    Add-Content (Join-Path (Get-RunContext).Path 'tries-a.txt') 'x'
    throw 'busy, try later'
}
'@
        Get-Tries $job 'tries-a.txt' | Should -Be 3
        @(Get-Events $job 'item_failed').Count | Should -Be 3
    }

    It 'ends a parallel item''s retry wait at a stop as a sequential one: the run is Stopped, not Failed, and the item stays failed' {
        $job = Invoke-Job @'
1..3 | Invoke-RunItem -Step work -Key { "k$_" } -ThrottleLimit 2 -MaxTries 3 -RetryDelay 30 {
    if ($_ -eq 2) { throw "flaky $_" }
    "done $_"
}
'@ -TimeoutSec 2
        $job.Info.Status | Should -Be 'Stopped'
        $job.Info.ItemsFailed | Should -Be 1
        @(Get-Events $job 'run_stopped').Count | Should -Be 1
        @(Get-Events $job 'run_failed').Count | Should -Be 0
        $job.Errors | Where-Object FullyQualifiedErrorId -Like 'RunFailed*' | Should -BeNullOrEmpty
    }

    It 'retries parallel items the same way' {
        $job = Invoke-Job @'
1..6 | Invoke-RunItem -Step work -Key { $_ } -ThrottleLimit 3 -MaxTries 2 -RetryDelay 0.05 {
    $tries = Join-Path (Get-RunContext).Path "tries-$_.txt"
    Add-Content $tries 'x'
    if ($_ % 2 -eq 0 -and @(Get-Content $tries).Count -lt 2) { throw "flaky $_" }
    "done $_"
}
'@
        $job.Info.Status | Should -Be 'Completed'
        $job.Info.ItemsCompleted | Should -Be 6
        2, 4, 6 | ForEach-Object { Get-Tries $job "tries-$_.txt" | Should -Be 2 }
        @(Get-Events $job 'item_failed').Key | Sort-Object | Should -Be @('2', '4', '6')
    }

    It 'names the run script''s file and line for an error inside a parallel item, as for a sequential one' {
        $job = Invoke-Job @'
$limit = 3
1..4 | Invoke-RunItem -Step work -Key { $_ } -ThrottleLimit 2 -RetryOn { $_.Exception.Message -match $using:limit } {
    if ($_ -eq 3) {
        throw [System.ArgumentException]::new("bad item $_ of $using:limit")
    }
    "done $_"
} -ErrorAction Continue
'@
        $job.Info.Status | Should -Be 'Failed'
        $failed = @(Get-Events $job 'item_failed')
        $failed.Count | Should -Be 1
        $failed[0].Data['error'] | Should -Match 'bad item 3 of 3'
        $failed[0].Data['error'] | Should -Match ([regex]::Escape($job.Script) + ':4\b') -Because 'the throw is on line 4 of the run script'
        @(Get-Events $job 'item_completed').Count | Should -Be 3
    }

    It 'accepts -MaxAttempts as an alias and -RetryDelay as a TimeSpan' {
        $command = Get-Command Invoke-RunItem
        $command.Parameters['MaxTries'].Aliases | Should -Contain 'MaxAttempts'
        $job = Invoke-Job @'
Invoke-RunStep s -MaxAttempts 2 -RetryDelay ([TimeSpan]::FromMilliseconds(20)) {
    Add-Content (Join-Path (Get-RunContext).Path 's.txt') 'x'
    if (@(Get-Content (Join-Path (Get-RunContext).Path 's.txt')).Count -lt 2) { throw 'once' }
}
'@
        $job.Info.Status | Should -Be 'Completed'
        Get-Tries $job 's.txt' | Should -Be 2
    }

    It 'ends a retry wait at Stop-Run: the run is Stopped, the item stays failed, and a resume retries it' {
        $root = New-Root
        $script = Join-Path $TestDrive 'slow-retry.ps1'
        Set-Content $script @'
Invoke-RunItem -Step work -Key { $_ } -InputObject 1 -MaxTries 3 -RetryDelay 600 {
    Add-Content (Join-Path (Get-RunContext).Path 'tries.txt') 'x'
    if (-not (Test-Path (Join-Path (Get-RunContext).Path 'fixed.txt'))) { throw 'not yet' }
    'done'
}
'@
        $child = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Command "Start-Run -Name wait -ScriptPath '$script' -Root '$root' | Out-Null"
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            do {
                Start-Sleep -Milliseconds 100
                $run = Get-Run -Root $root | Select-Object -First 1
                $failed = if ($run) { @(Get-RunEvent -Root $root -RunId $run.RunId | Where-Object Type -EQ 'item_failed') } else { @() }
            } until ($failed.Count -ge 1 -or [DateTime]::UtcNow -gt $deadline)
            $failed.Count | Should -Be 1 -Because 'the first try failed and the 600 s wait began'
            $sw = [Diagnostics.Stopwatch]::StartNew()
            Stop-Run -Root $root -RunId $run.RunId | Out-Null
            Wait-ChildPwsh $child -TimeoutSec 30 | Out-Null
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 20
        }
        finally { Stop-ChildPwsh $child }

        (Get-Run -Root $root -RunId $run.RunId).Status | Should -Be 'Stopped'
        Set-Content (Join-Path (Get-RunFolder $run) 'fixed.txt') 'ok'
        $resumed = Resume-Run -Root $root -RunId $run.RunId
        $resumed.Status | Should -Be 'Completed'
        @(Get-Content (Join-Path (Get-RunFolder $run) 'tries.txt')).Count | Should -Be 2
        (Test-Run -Root $root -RunId $run.RunId).IsValid | Should -BeTrue
    }

    Context 'a retry wait cut short' {
        BeforeAll {
            # One item whose first try fails and then waits 600 s; fixed.txt makes the next try succeed.
            $script:waitScript = Join-Path $TestDrive 'cut-wait.ps1'
            Set-Content $script:waitScript @'
Invoke-RunItem -Step work -Key { $_ } -InputObject 1 -MaxTries 3 -RetryDelay 600 {
    Add-Content (Join-Path (Get-RunContext).Path 'tries.txt') 'x'
    if (-not (Test-Path (Join-Path (Get-RunContext).Path 'fixed.txt'))) { throw 'not yet' }
    'done'
}
'@
            function Wait-FirstFailure([string] $Root) {
                $deadline = [DateTime]::UtcNow.AddSeconds(60)
                do {
                    Start-Sleep -Milliseconds 100
                    $run = Get-Run -Root $Root | Select-Object -First 1
                    $failed = if ($run) { @(Get-RunEvent -Root $Root -RunId $run.RunId -Type item_failed) } else { @() }
                } until ($failed.Count -ge 1 -or [DateTime]::UtcNow -gt $deadline)
                $failed.Count | Should -Be 1 -Because 'the first try failed and the 600 s wait began'
                $failed[0].Data['retry_in_ms'] | Should -BeGreaterThan 0
                $run
            }

            # After the cut: the item is failed, not in doubt, so a resume tries it once more, whatever -InDoubt says.
            function Assert-ResumesWithOneMoreTry($Run, [string] $Root) {
                Set-Content (Join-Path (Get-RunFolder $Run) 'fixed.txt') 'ok'
                $resumed = Resume-Run -Root $Root -RunId $Run.RunId -InDoubt Skip
                $resumed.Status | Should -Be 'Completed'
                @(Get-Content (Join-Path (Get-RunFolder $Run) 'tries.txt')).Count | Should -Be 2
                @(Get-RunEvent -Root $Root -RunId $Run.RunId -Type item_resolved) | Should -BeNullOrEmpty -Because 'nothing was in doubt'
                (Test-Run -Root $Root -RunId $Run.RunId).IsValid | Should -BeTrue
            }
        }

        It 'ends at Ctrl+C within a second: the run is Stopped by Ctrl+C and a resume tries the item again' {
            $root = New-Root
            $ps = [powershell]::Create()
            $null = $ps.AddScript("Import-Module '$env:RUNTOOLS_MODULE_PATH'; Start-Run -Name ctrlc -ScriptPath '$script:waitScript' -Root '$root'")
            $handle = $ps.BeginInvoke()
            try {
                $run = Wait-FirstFailure $root
                $sw = [Diagnostics.Stopwatch]::StartNew()
                $ps.Stop()   # what Ctrl+C does to the running pipeline
                $sw.Elapsed.TotalSeconds | Should -BeLessThan 5 -Because 'the wait is cut in 50 ms slices, not slept through'
            }
            finally {
                try { $null = $ps.EndInvoke($handle) } catch { }
                $ps.Dispose()
            }

            $after = Get-Run -Root $root -RunId $run.RunId
            $after.Status | Should -Be 'Stopped'
            (Get-RunEvent -Root $root -RunId $run.RunId -Type run_stopped).Data['requested_by'] | Should -Be 'Ctrl+C'
            Assert-ResumesWithOneMoreTry $run $root
        }

        It 'survives a SIGKILL of the real pwsh: the run is Interrupted and a resume tries the item again' {
            $root = New-Root
            $child = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Command "Start-Run -Name killed -ScriptPath '$script:waitScript' -Root '$root' | Out-Null"
            try { $run = Wait-FirstFailure $root }
            finally { Stop-ChildPwsh $child }

            Wait-RunInterrupted -RunId $run.RunId -Root $root | Should -Be 'Interrupted'
            Assert-ResumesWithOneMoreTry $run $root
        }
    }
}

Describe 'Time limits' {
    It 'stops an item past -TimeoutSec, records it as timed out with UnitTimedOut, and retries it' {
        $job = Invoke-Job @'
1..2 | Invoke-RunItem -Step work -Key { $_ } -TimeoutSec 1 -MaxTries 2 -RetryDelay 0.05 {
    $tries = Join-Path (Get-RunContext).Path "tries-$_.txt"
    Add-Content $tries 'x'
    if ($_ -eq 2 -and @(Get-Content $tries).Count -lt 2) { Start-Sleep -Seconds 30 }
    "done $_"
}
'@
        $job.Info.Status | Should -Be 'Completed'
        $failed = @(Get-Events $job 'item_failed')
        $failed.Count | Should -Be 1
        $failed[0].Key | Should -Be '2'
        $failed[0].Data['timed_out'] | Should -BeTrue
        $failed[0].Data['error_id'] | Should -Be 'UnitTimedOut'
        $failed[0].Data['duration_ms'] | Should -BeLessThan 10000
    }

    It 'fails a step past -TimeoutSec when no try is left, naming the limit' {
        $job = Invoke-Job @'
Invoke-RunStep slow -TimeoutSec 1 { Start-Sleep -Seconds 30; 'never' }
Invoke-RunStep after { 'not reached' }
'@
        $job.Info.Status | Should -Be 'Failed'
        $job.Info.Error | Should -Match 'time limit of 1 s'
        $failed = Get-Events $job 'step_failed'
        $failed.Data['timed_out'] | Should -BeTrue
        @(Get-Events $job 'step_started' | Where-Object Step -EQ 'after').Count | Should -Be 0
    }

    It 'stops a parallel item past -TimeoutSec while the others complete' {
        $job = Invoke-Job @'
1..4 | Invoke-RunItem -Step work -Key { $_ } -ThrottleLimit 4 -TimeoutSec 2 {
    if ($_ -eq 3) { Start-Sleep -Seconds 30 }
    "done $_"
}
'@
        $job.Info.Status | Should -Be 'Failed'
        $job.Info.ItemsCompleted | Should -Be 3
        $failed = @(Get-Events $job 'item_failed')
        $failed.Key | Should -Be '3'
        $failed[0].Data['timed_out'] | Should -BeTrue
    }

    It 'retries a parallel item past -TimeoutSec in its worker, which then goes on with the next items' {
        $job = Invoke-Job @'
$lines = @(1..10 | Invoke-RunItem -Step work -Key { $_ } -ThrottleLimit 2 -TimeoutSec 2 -MaxTries 2 -RetryDelay 0.05 -RetryOn { $_.Exception.Message -match 'time limit' } {
    $tries = Join-Path (Get-RunContext).Path "tries-$_.txt"
    Add-Content $tries ([runspace]::DefaultRunspace.InstanceId)
    if ($_ -eq 1 -and @(Get-Content $tries).Count -lt 2) { Start-Sleep -Seconds 30 }
    # The others take long enough that the other worker has not run them all when item 1's retry is done.
    if ($_ -ne 1) { Start-Sleep -Milliseconds 500 }
    "$_|$([runspace]::DefaultRunspace.InstanceId)"
})
Set-Content (Join-Path (Get-RunContext).Path 'lines.txt') $lines
'@
        $job.Info.Status | Should -Be 'Completed'
        $job.Info.ItemsCompleted | Should -Be 10
        $failed = @(Get-Events $job 'item_failed')
        $failed.Key | Should -Be '1'
        $failed[0].Data['timed_out'] | Should -BeTrue
        $failed[0].Data['retry_in_ms'] | Should -Not -BeNullOrEmpty -Because '-RetryOn, asked in the worker with the error as $_, called the time-out transient'
        $tries = @(Get-Content (Join-Path (Get-RunFolder $job.Info) 'tries-1.txt'))
        $tries.Count | Should -Be 2
        $tries[1] | Should -Be $tries[0] -Because 'the try after the time-out ran in the same worker'
        $lines = @(Get-Content (Join-Path (Get-RunFolder $job.Info) 'lines.txt'))
        $lines.Count | Should -Be 10
        @($lines | Where-Object { $_ -notlike '1|*' } | Where-Object { ($_ -split '\|')[1] -eq $tries[0] }).Count | Should -BeGreaterThan 0 -Because 'the worker whose item timed out ran later items too'
    }

    It 'fails a parallel item with its own error when its -RetryOn script block throws, says the rule failed, and does not end the process' {
        $root = New-Root
        $script = Join-Path $TestDrive 'throwing-rule.ps1'
        Set-Content $script @'
'a', 'b' | Invoke-RunItem -Key { $_ } -Step s1 -ThrottleLimit 2 -MaxTries 3 -RetryDelay 0 -RetryOn { throw 'the rule broke' } { throw "body fails $_" }
'@
        # In a child pwsh: before the fix the rule's error ended the whole process from a worker thread.
        $out = Invoke-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -TimeoutSec 120 -Command "`$r = Start-Run -Name rule -ScriptPath '$script' -Root '$root' -ErrorAction SilentlyContinue; 'STATUS=' + `$r.Status; 'FAILED=' + `$r.ItemsFailed"
        $out.ExitCode | Should -Be 0 -Because "the process ends normally: $($out.Error)"
        ($out.Output -join "`n") | Should -Match 'STATUS=Failed'
        $info = Get-Run -Root $root
        $info.Status | Should -Be 'Failed'
        $info.ItemsInDoubt | Should -Be 0
        # As for a sequential item: the item's own error fails it, not retried, and a warning names the rule's.
        $info.Error | Should -BeLike '*body fails*'
        Get-Content -Raw (Join-Path (Get-RunFolder $info) 'logs/attempt-1.log') | Should -BeLike '*-RetryOn script block failed*the rule broke*'
        $failed = @(Get-RunEvent -Root $root -RunId $info.RunId -Type item_failed)
        $failed.Count | Should -BeGreaterThan 0
        foreach ($event in $failed) {
            $event.Data.error | Should -BeLike 'body fails*'
            $event.Data['retry_in_ms'] | Should -BeNullOrEmpty -Because 'the error is not retried when the rule cannot decide'
        }
    }

    It 'fails a sequential item with its own error when its -RetryOn script block throws, and says the rule failed' {
        $root = New-Root
        $script = Join-Path $TestDrive 'throwing-rule-seq.ps1'
        Set-Content $script @'
Invoke-RunStep s1 {
    'a', 'b' | Invoke-RunItem -Key { $_ } -MaxTries 3 -RetryDelay 0 -RetryOn { throw 'the rule broke' } { throw "body fails $_" }
}
'@
        $info = Start-Run -Name rule -ScriptPath $script -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue 3>$null
        $info.Status | Should -Be 'Failed'
        $info.Error | Should -BeLike "*body fails a*"
        $info.Error | Should -Not -BeLike '*StepNotRunning*'
        $info.ItemsInDoubt | Should -Be 0
        Get-Content -Raw (Join-Path (Get-RunFolder $info) 'logs/attempt-1.log') | Should -BeLike '*-RetryOn script block failed*the rule broke*'
        $failed = @(Get-RunEvent -Root $root -RunId $info.RunId -Type item_failed)
        $failed.Count | Should -Be 1 -Because 'the error is not retried when the rule cannot decide'
        $failed[0].Data.error | Should -BeLike 'body fails a*'
    }

    It 'records an item that a step''s -TimeoutSec stopped as timed out with the step, and the step''s next try runs it again' {
        $root = New-Root
        $script = Join-Path $TestDrive 'step-limit-item.ps1'
        Set-Content $script @'
Invoke-RunStep s1 -TimeoutSec 1 -MaxTries 2 -RetryDelay 0 {
    1..3 | Invoke-RunItem -Key { "k$_" } { Start-Sleep -Seconds 3; "done $_" }
}
'@
        $info = Start-Run -Name steplimit -ScriptPath $script -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue
        $info.Status | Should -Be 'Failed'
        $errors[0].Exception.InnerException.ErrorId | Should -Be 'UnitTimedOut'
        $info.ItemsInDoubt | Should -Be 0
        $items = @(Get-RunEvent -Root $root -RunId $info.RunId -Type item_failed)
        $items.Count | Should -Be 2 -Because 'k1 was stopped with each of the step''s two tries'
        $items | ForEach-Object { $_.Data.error_id | Should -Be 'UnitTimedOut' }
        $steps = @(Get-RunEvent -Root $root -RunId $info.RunId -Type step_failed)
        $steps.Count | Should -Be 2
        $steps | ForEach-Object { $_.Data.timed_out | Should -BeTrue }
    }

    It 'rejects a -TimeoutSec below 0 or above 49.7 days, -MaxTries 0, a -RetryOn rule that is no type, name or script block, and a -RetryDelay outside 0 to 1 day as parameter errors' {
        { Invoke-RunItem -Step s -Key { $_ } -InputObject 1 -TimeoutSec -1 { } } | Should -Throw -ErrorId 'ParameterArgumentValidationError,RunTools.InvokeRunItemCommand'
        # A timer takes at most 2^32 - 2 ms: a longer limit used to fail the unit as it started, with a raw ArgumentOutOfRangeException.
        { Invoke-RunItem -Step s -Key { $_ } -InputObject 1 -TimeoutSec 4294968 { } } | Should -Throw -ErrorId 'ParameterArgumentValidationError,RunTools.InvokeRunItemCommand'
        { Invoke-RunStep s -TimeoutSec 5000000 { } } | Should -Throw -ErrorId 'ParameterArgumentValidationError,RunTools.InvokeRunStepCommand'
        $longest = Join-Path $TestDrive 'longest-limit.ps1'
        Set-Content $longest "Invoke-RunStep s -TimeoutSec 4294967 { 1..2 | Invoke-RunItem -Key { `$_ } -TimeoutSec 4294967 { `$_ } }"
        (Start-Run -Name longest -ScriptPath $longest -Root (New-Root)).Status | Should -Be 'Completed' -Because 'the longest limit a timer takes works'
        { Invoke-RunStep s -MaxTries 0 { } } | Should -Throw -ErrorId 'ParameterArgumentValidationError,RunTools.InvokeRunStepCommand'
        { Invoke-RunStep s -MaxTries 2 -RetryOn 42 { } } | Should -Throw -ErrorId 'ParameterArgumentValidationError,RunTools.InvokeRunStepCommand'
        { Invoke-RunItem -Step s -Key { $_ } -InputObject 1 -RetryOn ([System.IO.IOException]), 3.5 { } } | Should -Throw -ErrorId 'ParameterArgumentValidationError,RunTools.InvokeRunItemCommand'
        { Invoke-RunStep s -RetryDelay -1 { } } | Should -Throw -ErrorId 'ParameterArgumentValidationError,RunTools.InvokeRunStepCommand'
        { Invoke-RunItem -Step s -Key { $_ } -InputObject 1 -RetryDelay ([TimeSpan]::FromDays(2)) { } } | Should -Throw -ErrorId 'ParameterArgumentValidationError,RunTools.InvokeRunItemCommand'
    }
}

Describe 'The time limit of an attempt' {
    It 'ends a step that has its own -TimeoutSec at a stop met at an item boundary without completing it: a resume runs its remaining items' {
        $root = New-Root
        $script = Join-Path $TestDrive 'step-limit-stop.ps1'
        Set-Content $script @'
Invoke-RunStep work -TimeoutSec 600 {
    1..12 | Invoke-RunItem -Key { $_ } {
        Add-Content (Join-Path (Get-RunContext).Path 'effects.txt') $_
        Start-Sleep -Milliseconds 250
    }
}
'@
        $info = Start-Run -Name steplimit -ScriptPath $script -Root $root -TimeoutSec 1
        $info.Status | Should -Be 'Stopped'
        $info.StepsCompleted | Should -Be 0 -Because 'a step whose item boundary met the stop did not complete'
        $info.ItemsCompleted | Should -BeLessThan 12
        @(Get-RunEvent -Root $root -RunId $info.RunId -Type step_completed).Count | Should -Be 0

        $final = Resume-Run -Root $root -RunId $info.RunId
        $final.Status | Should -Be 'Completed'
        $final.ItemsCompleted | Should -Be 12
        $effects = @(Get-Content (Join-Path (Get-RunFolder $info) 'effects.txt'))
        ($effects | Sort-Object -Unique).Count | Should -Be 12
    }

    It 'leaves a unit with -TimeoutSec that the forced stop cut off in doubt, never completed: <Unit>' -ForEach @(
        @{ Unit = 'a step'; Body = "Invoke-RunStep slow -TimeoutSec 60 {`n    Start-Sleep -Seconds 30`n    Set-Content (Join-Path (Get-RunContext).Path 'finished.txt') 'x'`n}" }
        @{ Unit = 'an item'; Body = "1 | Invoke-RunItem -Step slow -Key { `$_ } -TimeoutSec 60 {`n    Start-Sleep -Seconds 30`n    Set-Content (Join-Path (Get-RunContext).Path 'finished.txt') 'x'`n}" }
    ) {
        $root = New-Root
        $script = Join-Path $TestDrive "cut-$([guid]::NewGuid().ToString('N').Substring(0, 6)).ps1"
        Set-Content $script $Body
        # The time limit asks the run to stop; the unit reaches no boundary, so after the 5 s grace it is stopped where it is.
        $info = Start-Run -Name cut -ScriptPath $script -Root $root -TimeoutSec 1 -WarningAction SilentlyContinue
        $info.Status | Should -Be 'Stopped'
        Test-Path (Join-Path (Get-RunFolder $info) 'finished.txt') | Should -BeFalse
        $info.StepsCompleted | Should -Be 0
        $info.ItemsCompleted | Should -Be 0
        @(Get-RunEvent -Root $root -RunId $info.RunId | Where-Object Type -In 'step_completed', 'item_completed').Count | Should -Be 0
        if ($Unit -eq 'an item') { $info.ItemsInDoubt | Should -Be 1 }
    }

    It 'asks the run to stop at Start-Run -TimeoutSec: it ends Stopped at the next boundary and a resume finishes the rest' {
        $root = New-Root
        $script = Join-Path $TestDrive 'limited.ps1'
        Set-Content $script @'
1..40 | Invoke-RunItem -Step work -Key { $_ } {
    Add-Content (Join-Path (Get-RunContext).Path 'effects.txt') $_
    Start-Sleep -Milliseconds 100
}
'@
        $info = Start-Run -Name limited -ScriptPath $script -Root $root -TimeoutSec 1
        $info.Status | Should -Be 'Stopped'
        $info.ItemsCompleted | Should -BeLessThan 40
        $stopped = Get-RunEvent -Root $root -RunId $info.RunId | Where-Object Type -EQ 'run_stopped'
        $stopped.Data['requested_by'] | Should -Be 'time limit'
        $stopped.Data['reason'] | Should -Match 'time limit of 1 s'

        $final = Resume-Run -Root $root -RunId $info.RunId
        $final.Status | Should -Be 'Completed'
        $effects = @(Get-Content (Join-Path (Get-RunFolder $info) 'effects.txt'))
        $effects.Count | Should -Be 40 -Because 'no item ran twice'
        ($effects | Sort-Object -Unique).Count | Should -Be 40
    }

    It 'applies Resume-Run -TimeoutSec to the resumed attempt: it stops again at the limit, and a last resume finishes' {
        $root = New-Root
        $script = Join-Path $TestDrive 'limited-resume.ps1'
        Set-Content $script @'
1..60 | Invoke-RunItem -Step work -Key { $_ } {
    Add-Content (Join-Path (Get-RunContext).Path 'effects.txt') $_
    Start-Sleep -Milliseconds 100
}
'@
        $first = Start-Run -Name limited2 -ScriptPath $script -Root $root -TimeoutSec 1
        $first.Status | Should -Be 'Stopped'
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $second = Resume-Run -Root $root -RunId $first.RunId -TimeoutSec 1
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 4.5 -Because 'the resumed attempt stops at its own 1 s limit, not after the remaining 4 s of items'
        $second.Status | Should -Be 'Stopped'
        $second.ItemsCompleted | Should -BeGreaterThan $first.ItemsCompleted
        $second.ItemsCompleted | Should -BeLessThan 60
        $stops = @(Get-RunEvent -Root $root -RunId $first.RunId -Type run_stopped)
        $stops.Count | Should -Be 2
        $stops[1].Data['requested_by'] | Should -Be 'time limit'
        $second.Attempt | Should -Be 2

        (Resume-Run -Root $root -RunId $first.RunId).Status | Should -Be 'Completed'
        $effects = @(Get-Content (Join-Path (Get-RunFolder $first) 'effects.txt'))
        $effects.Count | Should -Be 60 -Because 'no item ran twice'
    }
}
