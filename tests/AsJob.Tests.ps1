# Start-Run -AsJob and Resume-Run -AsJob (issue 12): a job in this process whose output is the
# RunInfo and whose errors are the run's; Stop-Job stops the run as Stop-Run does; the job's State
# follows the run (Completed, Failed, Stopped).
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $script:itemsScript = Join-Path $PSScriptRoot 'scripts/items.ps1'

    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    # A folder, or with RUNTOOLS_TEST_STORE 'postgresql' a fresh schema (tests/StoreContract.Tests.ps1).
    function New-Root { New-TestRoot -Under $TestDrive }

    function Get-Effects([string] $Path) { if (Test-Path $Path) { @(Get-Content $Path | Where-Object { $_ }) } else { @() } }

    function Remove-RunJobs { Get-Job | Where-Object PSJobTypeName -eq 'RunToolsJob' | Remove-Job -Force }

    function Wait-Until([scriptblock] $Condition, [int] $Seconds = 60) {
        $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
        while (-not (& $Condition)) {
            if ([DateTime]::UtcNow -gt $deadline) { throw "timed out after $Seconds s waiting for: $Condition" }
            Start-Sleep -Milliseconds 50
        }
    }
}

Describe 'Start-Run -AsJob' {
    AfterEach { Remove-RunJobs }

    It 'returns a job at once, whose output is the final RunInfo; the caller''s $LASTEXITCODE is left alone' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'job-effects.txt'
        $global:LASTEXITCODE = 42
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $job = Start-Run -Name jobbed -ScriptPath $itemsScript -Root $root -Parameters @{ EffectsPath = $effects; Count = 5; DelayMilliseconds = 200 } -AsJob
        $sw.ElapsedMilliseconds | Should -BeLessThan 900   # five items of 200 ms cannot have run
        $job | Should -BeOfType ([System.Management.Automation.Job])
        $job.PSJobTypeName | Should -Be 'RunToolsJob'
        $job.Name | Should -Be 'jobbed'
        $job.State | Should -BeIn 'NotStarted', 'Running'
        (Get-Job -Id $job.Id).InstanceId | Should -Be $job.InstanceId

        $null = Wait-Job $job -Timeout 60
        $job.State | Should -Be 'Completed'
        $info = @(Receive-Job $job)
        $info.Count | Should -Be 1
        $info[0] | Should -BeOfType ([RunTools.RunInfo])
        $info[0].Status | Should -Be 'Completed'
        $info[0].ItemsCompleted | Should -Be 5
        $job.StatusMessage | Should -Be "$($info[0].RunId): Completed"
        $job.HasMoreData | Should -BeFalse
        (Get-Effects $effects).Count | Should -Be 5
        $global:LASTEXITCODE | Should -Be 42
    }

    It 'resolves relative paths against the caller''s location and sends the script''s host output to the information stream' {
        if ($env:RUNTOOLS_TEST_STORE -eq 'postgresql') { Set-ItResult -Skipped -Because 'a relative -Root is a folder'; return }
        Push-Location $TestDrive
        try {
            Copy-Item $itemsScript ./relative-items.ps1
            $job = Start-Run -Name relative -ScriptPath ./relative-items.ps1 -Root ./relative-runs -Parameters @{ EffectsPath = './relative-effects.txt'; Count = 2 } -AsJob
        }
        finally { Pop-Location }
        $info = Receive-Job $job -Wait -InformationVariable hostLines 6>$null
        $info.Status | Should -Be 'Completed'
        $info.Path | Should -BeLike (Join-Path $TestDrive 'relative-runs/*')
        Join-Path $TestDrive 'relative-effects.txt.prepared' | Should -Exist   # the script's Set-Content of a relative path
        @(Get-Content (Join-Path $TestDrive 'relative-effects.txt')) | Should -Be @('k001', 'k002')   # and its [IO.File] append
        ($hostLines | ForEach-Object { "$_" }) | Should -Contain 'done k001'
    }

    It 'ends Failed when the run fails, with the run''s RunFailed error and the RunInfo' {
        $root = New-Root
        $flag = Join-Path $TestDrive 'job-fail.flag'
        Set-Content $flag x
        $job = Start-Run -Name failing -ScriptPath $itemsScript -Root $root -Parameters @{ EffectsPath = (Join-Path $TestDrive 'fail.txt'); Count = 3; FailOn = 'k002'; FailFlag = $flag } -AsJob
        $info = Receive-Job $job -Wait -ErrorVariable failures -ErrorAction SilentlyContinue
        $job.State | Should -Be 'Failed'
        $info.Status | Should -Be 'Failed'
        @($failures).Count | Should -Be 1
        $failures[0].FullyQualifiedErrorId | Should -Be 'RunFailed,RunTools.StartRunCommand'
        $failures[0].Exception.Message | Should -BeLike "*item k002 failed on purpose*Resume-Run -RunId $($info.RunId)*"
    }

    It 'ends Failed with the error when no attempt ran' {
        $job = Start-Run -Name missing -ScriptPath (Join-Path $TestDrive 'no-such-script.ps1') -Root (New-Root) -AsJob
        $out = Receive-Job $job -Wait -ErrorVariable failures -ErrorAction SilentlyContinue
        $job.State | Should -Be 'Failed'
        $out | Should -BeNullOrEmpty
        $failures[0].FullyQualifiedErrorId | Should -Be 'ScriptNotFound,RunTools.StartRunCommand'
    }

    It 'starts no job under -WhatIf' {
        $root = New-Root
        Start-Run -Name whatif -ScriptPath $itemsScript -Root $root -AsJob -WhatIf | Should -BeNullOrEmpty
        Get-Job | Where-Object PSJobTypeName -eq 'RunToolsJob' | Should -BeNullOrEmpty
        $root | Should -Not -Exist
    }
}

Describe 'Stop-Job and Resume-Run -AsJob' {
    AfterEach { Remove-RunJobs }

    It 'stops the run cleanly with Stop-Job (Stopped, resumable), and a resume job finishes it with each item done once' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'stop-effects.txt'
        $job = Start-Run -Name stopped -ScriptPath $itemsScript -Root $root -Parameters @{ EffectsPath = $effects; Count = 40; DelayMilliseconds = 100 } -AsJob
        Wait-Until { (Get-Effects $effects).Count -ge 3 }
        $sw = [Diagnostics.Stopwatch]::StartNew()
        Stop-Job $job
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 5   # the item in flight (100 ms) ends, no grace period needed
        $job.State | Should -Be 'Stopped'
        $info = Receive-Job $job
        $info.Status | Should -Be 'Stopped'
        $info.ItemsCompleted | Should -BeLessThan 40
        $stop = Get-RunEvent -RunId $info.RunId -Root $root -Type run_stopped
        $stop.Data.requested_by | Should -Be 'Stop-Job'
        Get-RunEvent -RunId $info.RunId -Root $root -Type item_started | Should -HaveCount $info.ItemsCompleted   # nothing left in doubt

        $resume = $info | Resume-Run -AsJob
        $resume.Name | Should -Be $info.RunId
        $final = Receive-Job $resume -Wait
        $resume.State | Should -Be 'Completed'
        $final.RunId | Should -Be $info.RunId
        $final.Status | Should -Be 'Completed'
        $final.Attempt | Should -Be 2
        $effectsSeen = Get-Effects $effects
        $effectsSeen.Count | Should -Be 40
        ($effectsSeen | Sort-Object -Unique).Count | Should -Be 40
    }

    It 'Start-Run -Resume -AsJob continues the unfinished run of that name instead of starting a new one' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'resume-effects.txt'
        $flag = Join-Path $TestDrive 'resume.flag'
        Set-Content $flag x
        $first = Start-Run -Name sched -ScriptPath $itemsScript -Root $root -Parameters @{ EffectsPath = $effects; Count = 4; FailOn = 'k003'; FailFlag = $flag } -ErrorAction SilentlyContinue
        $first.Status | Should -Be 'Failed'
        Remove-Item $flag

        $job = Start-Run -Name sched -ScriptPath $itemsScript -Root $root -Resume -AsJob
        $info = Receive-Job $job -Wait
        $job.State | Should -Be 'Completed'
        $info.RunId | Should -Be $first.RunId
        $info.Status | Should -Be 'Completed'
        @(Get-Run -Root $root).Count | Should -Be 1
        (Get-Effects $effects | Sort-Object -Unique) | Should -Be 'k001', 'k002', 'k003', 'k004'
    }

    It 'runs an -InDoubt script block in the job''s runspace: Write-Host in it does not hang the job while the caller waits, and the caller''s functions are not seen' {
        # A run killed mid-item (its process exits inside item 2): item 2 is in doubt.
        $folder = Join-Path $TestDrive 'doubt-job'
        $script = Join-Path $TestDrive 'doubt-job.ps1'
        Set-Content $script @'
param([string] $Flag)
1..3 | Invoke-RunItem -Step work -Key { "k$_" } { if ($_ -eq 2 -and -not (Test-Path $Flag)) { $null = New-Item $Flag; [Environment]::Exit(9) }; $_ }
'@
        Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1')
        $flag = Join-Path $TestDrive 'doubt-job.flag'
        $killed = Invoke-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -TimeoutSec 120 -Command "Start-Run -Name doubt -RunId doubt -ScriptPath '$script' -Root '$folder' -Parameters @{ Flag = '$flag' }"
        $killed.ExitCode | Should -Be 9
        $copy = Join-Path $TestDrive 'doubt-job-copy'
        Copy-Item -Recurse $folder $copy

        function Test-CallerOnly { $true }
        # Before the fix the script block ran on the job's thread in this runspace: Write-Host in it hung the job for ever.
        $job = Resume-Run -RunId doubt -Root $folder -InDoubt { Write-Host "deciding $_"; $true } -AsJob
        $null = Wait-Job $job -Timeout 60
        $job.State | Should -Be 'Completed'
        $info = Receive-Job $job 6>&1
        ($info | Where-Object { $_ -is [System.Management.Automation.InformationRecord] } | ForEach-Object { "$_" }) | Should -Contain 'deciding 2'
        ($info | Where-Object { $_ -is [RunTools.RunInfo] }).Status | Should -Be 'Completed'

        $job = Resume-Run -RunId doubt -Root $copy -InDoubt { Test-CallerOnly } -AsJob
        $null = Wait-Job $job -Timeout 60
        $job.State | Should -Be 'Failed'
        $job.ChildJobs[0].JobStateInfo.Reason.Message + ($job | Receive-Job -ErrorAction SilentlyContinue -ErrorVariable jobErrors | Out-String) + ($jobErrors | Out-String) | Should -BeLike "*Test-CallerOnly*"
    }

    It 'returns one job per piped run, each ending with its own run' {
        $root = New-Root
        $runs = foreach ($n in 1, 2) {
            $job = Start-Run -Name "pair$n" -ScriptPath $itemsScript -Root $root -Parameters @{ EffectsPath = (Join-Path $TestDrive "pair$n.txt"); Count = 30; DelayMilliseconds = 50 } -AsJob
            Wait-Until { (Get-Effects (Join-Path $TestDrive "pair$n.txt")).Count -ge 2 }
            Stop-Job $job
            Receive-Job $job
        }
        $runs.Status | Should -Be 'Stopped', 'Stopped'

        $jobs = @($runs | Resume-Run -AsJob)
        $jobs.Count | Should -Be 2
        $null = Wait-Job $jobs -Timeout 90
        $jobs.State | Should -Be 'Completed', 'Completed'
        $final = $jobs | Receive-Job
        ($final.RunId | Sort-Object) | Should -Be ($runs.RunId | Sort-Object)
        $final.ItemsCompleted | Should -Be 30, 30
    }
}
