# Watching a run (issue 12): the counters on RunInfo, the 80-column table, Wait-Run,
# Get-RunEvent -Wait, retention (Get-Run -Before, Remove-Run by name, status and age), completion.
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force

    # Three literal steps; item 4 of 'upload' throws.
    $script:threeSteps = Join-Path $TestDrive 'three-steps.ps1'
    Set-Content $script:threeSteps @'
Invoke-RunStep extract { 1..3 }
Invoke-RunStep upload { 1..5 | Invoke-RunItem -Key { "$_" } { if ($_ -eq 4) { throw "bad item four" }; $_ } }
Invoke-RunStep report { 'r' }
'@
    $script:clean = Join-Path $TestDrive 'clean.ps1'
    Set-Content $script:clean @'
Invoke-RunStep extract { 1..3 }
Invoke-RunStep upload { 1..5 | Invoke-RunItem -Key { "$_" } { $_ } }
'@
    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    # A folder, or with RUNTOOLS_TEST_STORE 'postgresql' a fresh schema (tests/StoreContract.Tests.ps1).
    function New-Root { New-TestRoot -Under $TestDrive }
}

Describe 'RunInfo counters' {
    It 'knows the total of literal steps before they run, with a percent' {
        $root = New-Root
        $run = Start-Run -Name nightly -ScriptPath $script:threeSteps -Root $root -Step extract
        $run.Status | Should -Be 'Stopped'
        $run.StepsCompleted | Should -Be 1
        $run.StepsTotal | Should -Be 3
        $run.Percent | Should -Be 33
        $run.ItemsTotal | Should -BeNullOrEmpty
        $run.Duration | Should -BeOfType ([TimeSpan])
        $run.Duration | Should -BeLessThan ([TimeSpan]::FromMinutes(5))
    }

    It 'counts a step the script names twice once' {
        $twice = Join-Path $TestDrive 'twice.ps1'
        Set-Content $twice "if (`$true) { Invoke-RunStep a { 1 } } else { Invoke-RunStep a { 0 } }`nInvoke-RunStep b { 2 }`nInvoke-RunStep a2 { 3 }"
        $run = Start-Run -Name twice -ScriptPath $twice -Root (New-Root) -Step a
        $run.StepsCompleted | Should -Be 1
        $run.StepsTotal | Should -Be 3
        (Get-Run -Root $run.Root -RunId $run.RunId).StepsTotal | Should -Be 3
    }

    It 'leaves the total unknown (null) when a step name is computed' {
        $dynamic = Join-Path $TestDrive 'dynamic.ps1'
        Set-Content $dynamic "Invoke-RunStep a { 1 }`n`$n = 'b'`nInvoke-RunStep `$n { 2 }`nInvoke-RunStep c { 3 }"
        $run = Start-Run -Name dyn -ScriptPath $dynamic -Root (New-Root) -Step a
        $run.StepsCompleted | Should -Be 1
        $run.StepsTotal | Should -BeNullOrEmpty
        $run.Percent | Should -BeNullOrEmpty
    }

    It 'counts failed items and keeps the last error with its position' {
        $root = New-Root
        $run = Start-Run -Name nightly -ScriptPath $script:threeSteps -Root $root -ErrorAction SilentlyContinue
        $run.Status | Should -Be 'Failed'
        $run.ItemsCompleted | Should -Be 3   # item 4 fails the step; 5 is never reached
        $run.ItemsFailed | Should -Be 1
        $run.ItemsInDoubt | Should -Be 0
        $run.LastError | Should -BeLike "*bad item four*three-steps.ps1:2*"
        if ($env:RUNTOOLS_TEST_STORE -eq 'postgresql') { return } # run.json is a run folder's file
        (Get-Content (Join-Path $run.Path 'run.json') -Raw | ConvertFrom-Json).last_error | Should -Be $run.LastError
        # The journal alone gives the same: a reader that rebuilds the lost snapshot agrees.
        Remove-Item (Join-Path $run.Path 'run.json')
        $again = Get-Run -RunId $run.RunId -Root $root
        $again.ItemsFailed | Should -Be 1
        $again.LastError | Should -Be $run.LastError
    }

    It 'knows the item total once every step that runs items has completed, before the run completes' {
        $root = New-Root
        $run = Start-Run -Name clean -ScriptPath $script:threeSteps -Root $root -Step extract, upload -ErrorAction SilentlyContinue
        $run.ItemsTotal | Should -BeNullOrEmpty   # item 4 failed the step: item 5 was never seen
        $items = Join-Path $TestDrive 'items-only.ps1'
        Set-Content $items @'
Invoke-RunStep extract { 1..3 }
1..4 | Invoke-RunItem -Step upload -Key { "$_" } { $_ }
Invoke-RunStep report { 'r' }
'@
        $run = Start-Run -Name items -ScriptPath $items -Root $root -Step extract
        $run.ItemsTotal | Should -BeNullOrEmpty   # upload has not run
        $run = Resume-Run -InputObject $run -Step upload
        $run.Status | Should -Be 'Stopped'
        $run.ItemsTotal | Should -Be 4
        (Get-Run -RunId $run.RunId -Root $root).ItemsTotal | Should -Be 4
    }

    It 'leaves the item total unknown when an Invoke-RunItem cannot be tied to a step by reading the script' {
        $inFunction = Join-Path $TestDrive 'in-function.ps1'
        Set-Content $inFunction @'
function Send-All { 1..2 | Invoke-RunItem -Key { "$_" } { $_ } }
Invoke-RunStep upload { Send-All }
Invoke-RunStep report { 'r' }
'@
        $run = Start-Run -Name fn -ScriptPath $inFunction -Root (New-Root) -Step upload
        $run.ItemsCompleted | Should -Be 2
        $run.ItemsTotal | Should -BeNullOrEmpty
    }

    It 'knows every total once the run is Completed' {
        $run = Start-Run -Name clean -ScriptPath $script:clean -Root (New-Root)
        $run.Status | Should -Be 'Completed'
        $run.StepsTotal | Should -Be 2
        $run.ItemsTotal | Should -Be 5
        $run.ItemsCompleted | Should -Be 5
        $run.Percent | Should -Be 100
        $run.LastError | Should -BeNullOrEmpty
    }
}

Describe 'Enum-valued properties are names' {
    # ConvertTo-Json and Export-Csv read .NET properties and would write an enum as its number.
    It 'writes RunInfo.Status as its name in JSON and still filters and compares with the enum' {
        $root = New-Root
        $stopped = Start-Run -Name nightly -ScriptPath $script:threeSteps -Root $root -Step extract
        $done = Start-Run -Name clean -ScriptPath $script:clean -Root $root
        $json = Get-Run -RunId $done.RunId -Root $root | ConvertTo-Json -Depth 2
        $json | Should -Match '"Status":\s*"Completed"'
        ($json | ConvertFrom-Json).Status | Should -BeExactly 'Completed'
        (Get-Run -Root $root | ConvertTo-Csv | ConvertFrom-Csv).Status | Sort-Object | Should -Be @('Completed', 'Stopped')
        @(Get-Run -Root $root | Where-Object Status -eq Stopped).RunId | Should -Be @($stopped.RunId)
        @(Get-Run -Root $root | Where-Object Status -eq ([RunTools.RunStatus]::Completed)).RunId | Should -Be @($done.RunId)
        $done.Status | Should -Be ([RunTools.RunStatus]::Completed)
        # The parameter keeps its enum type: validation and completion of status names.
        (Get-Command Get-Run).Parameters['Status'].ParameterType | Should -Be ([RunTools.RunStatus[]])
        { Get-Run -Root $root -Status Sleeping } | Should -Throw -ErrorId 'CannotConvertArgumentNoMessage,RunTools.GetRunCommand'
    }

    It 'writes Test-Run problems with kind and severity names, and Compare-Run rows with names' {
        if ($env:RUNTOOLS_TEST_STORE -eq 'postgresql') { Set-ItResult -Skipped -Because 'it damages a file of a run folder'; return }
        $root = New-Root
        $run = Start-Run -Name clean -ScriptPath $script:clean -Root $root
        $first = Get-RunEvent -RunId $run.RunId -Root $root -Type step_completed | Select-Object -First 1
        Add-Content -LiteralPath (Join-Path $run.Path "steps/$($first.Step)/output.clixml") -Value ' '
        $result = Test-Run -RunId $run.RunId -Root $root
        $result.IsValid | Should -BeFalse
        $json = $result | ConvertTo-Json -Depth 3 | ConvertFrom-Json
        $json.Status | Should -BeExactly 'Completed'
        $json.Problems[0].Severity | Should -BeExactly 'Error'
        $json.Problems[0].Kind | Should -BeIn ([enum]::GetNames([RunTools.RunProblemKind]))
        $json.Problems[0].Kind | Should -Not -Match '^\d+$'
        $result.Errors | Should -Be 1

        $other = Start-Run -Name clean -ScriptPath $script:clean -Root $root
        $rows = Compare-Run -ReferenceRunId $run.RunId -DifferenceRunId $other.RunId -Root $root -Property Status, Steps -IncludeEqual | ConvertTo-Json | ConvertFrom-Json
        $status = $rows | Where-Object Property -EQ 'Status'
        $status.Kind | Should -BeExactly 'Equal'
        $status.ReferenceValue | Should -BeExactly 'Completed'
        ($rows | Where-Object Property -EQ 'Steps' | Select-Object -First 1).ReferenceValue | Should -BeExactly 'Completed'
    }

    It 'writes an artifact''s Mode as its name' {
        # The run script runs in this session, so a global variable carries the RunArtifact out.
        $file = Join-Path $TestDrive 'a.txt'
        Set-Content -LiteralPath $file -Value 1
        $script = Join-Path $TestDrive 'artifact.ps1'
        Set-Content $script "Invoke-RunStep make { `$global:watchArtifact = Add-RunArtifact -Path '$file'; `$global:watchArtifact | Out-Null }"
        $run = Start-Run -Name art -ScriptPath $script -Root (New-Root)
        $run.Status | Should -Be 'Completed'
        $global:watchArtifact | ConvertTo-Json | Should -Match '"Mode":\s*"Copy"'
        $global:watchArtifact.Mode | Should -Be ([RunTools.ArtifactMode]::Copy)
        Remove-Variable -Name watchArtifact -Scope Global
    }
}

Describe 'The default views' {
    It 'fits the table in 80 columns without cutting realistic values' {
        $root = New-Root
        $stopped = Start-Run -Name nightly-etl -ScriptPath $script:threeSteps -Root $root -Step extract
        $failed = Start-Run -Name nightly-etl -ScriptPath $script:threeSteps -Root $root -ErrorAction SilentlyContinue
        $lines = (Get-Run -Root $root | Format-Table | Out-String -Width 80) -split "`r?`n" | Where-Object { $_.Trim() }
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual 80 }
        $lines -join "`n" | Should -Not -Match '…|\.\.\.'
        $lines[0] -split '\s+' | Should -Be @('Name', 'Status', 'Steps', 'Items', 'Failed', 'RunId')
        $row = $lines | Where-Object { $_ -like "*$($failed.RunId)*" }
        $row | Should -Match "^nightly-etl\s+Failed\s+1/3 33%\s+3\s+1\s+$([regex]::Escape($failed.RunId))$"
        $lines | Where-Object { $_ -like "*$($stopped.RunId)*" } | Should -Match 'Stopped\s+1/3 33%'
    }

    It 'shows the counters in the list view' {
        $run = Start-Run -Name nightly -ScriptPath $script:threeSteps -Root (New-Root) -ErrorAction SilentlyContinue
        $text = $run | Format-List | Out-String -Width 200
        foreach ($name in 'StepsTotal', 'Percent', 'ItemsTotal', 'ItemsFailed', 'ItemsInDoubt', 'Duration', 'LastError') {
            $text | Should -Match "(?m)^$name\s+:"
        }
        $text | Should -Match '(?m)^ItemsFailed\s+: 1$'
    }
}

Describe 'Wait-Run and Get-RunEvent -Wait' {
    BeforeAll {
        # About 4 s of work in a child pwsh: ten items of 400 ms.
        $script:slow = Join-Path $TestDrive 'slow.ps1'
        Set-Content $script:slow "Invoke-RunStep work { 1..10 | Invoke-RunItem -Key { `"`$_`" } { Start-Sleep -Milliseconds 400; `$_ } }"
        function Start-SlowRun([string] $Root, [string] $Id) {
            $child = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Command "`$null = Start-Run -Name slow -RunId '$Id' -ScriptPath '$script:slow' -Root '$Root'"
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            while ((Get-Run -RunId $Id -Root $Root -ErrorAction SilentlyContinue).Status -ne 'Running') {
                if ([DateTime]::UtcNow -gt $deadline) { throw "The slow run did not start: $(Get-ChildPwshOutput $child)" }
                Start-Sleep -Milliseconds 100
            }
            $child
        }
    }

    It 'returns nothing on -Timeout while the run runs, then the final RunInfo when it ends' {
        $root = New-Root
        $child = Start-SlowRun $root 'slow-1'
        try {
            $elapsed = Measure-Command { $early = Wait-Run -RunId 'slow-1' -Root $root -Timeout 1 -ErrorVariable errors }
            $early | Should -BeNullOrEmpty
            $errors | Should -BeNullOrEmpty
            $elapsed.TotalSeconds | Should -BeGreaterOrEqual 0.9
            $elapsed.TotalSeconds | Should -BeLessThan 5

            $final = Get-Run -RunId 'slow-1' -Root $root | Wait-Run -Timeout 60
            $final | Should -BeOfType ([RunTools.RunInfo])
            $final.Status | Should -Be 'Completed'
            $final.ItemsCompleted | Should -Be 10
            Wait-ChildPwsh $child -TimeoutSec 30 | Should -Be 0
        } finally { Stop-ChildPwsh $child }
    }

    It 'with -Any returns the run that ended first; by -Name and -Path too' {
        $root = New-Root
        $done = Start-Run -Name quick -RunId 'quick-1' -ScriptPath $script:clean -Root $root
        $child = Start-SlowRun $root 'slow-2'
        try {
            $first = Wait-Run -RunId 'slow-2', 'quick-1' -Root $root -Any -Timeout 30
            $first.RunId | Should -Be 'quick-1'
            (Wait-Run -Name 'qu*' -Root $root -Timeout 5).RunId | Should -Be 'quick-1'
            if ($done.Path) { (Wait-Run -Path $done.Path -Timeout 5).Status | Should -Be 'Completed' } # -Path names run folders
            # Without -Any every run must end: slow-2 keeps it waiting past this timeout.
            Wait-Run -RunId 'slow-2', 'quick-1' -Root $root -Timeout 1 | Should -BeNullOrEmpty
        } finally { Stop-ChildPwsh $child }
    }

    It 'stops waiting promptly on Ctrl+C (StopProcessing)' {
        $root = New-Root
        $child = Start-SlowRun $root 'slow-3'
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$env:RUNTOOLS_MODULE_PATH'; Wait-Run -RunId 'slow-3' -Root '$root'; Get-RunEvent -RunId 'slow-3' -Root '$root' -Wait")
            $async = $ps.BeginInvoke()
            Start-Sleep -Milliseconds 700
            $async.IsCompleted | Should -BeFalse
            $elapsed = Measure-Command { $ps.Stop() }
            $elapsed.TotalSeconds | Should -BeLessThan 2
            (Get-Run -RunId 'slow-3' -Root $root).Status | Should -Be 'Running'
        } finally { $ps.Dispose(); Stop-ChildPwsh $child }
    }

    It 'Get-RunEvent -Wait follows the journal until the run ends' {
        $root = New-Root
        $child = Start-SlowRun $root 'slow-4'
        try {
            $job = Start-ThreadJob { Import-Module $using:env:RUNTOOLS_MODULE_PATH; Get-RunEvent -RunId 'slow-4' -Root $using:root -Wait -Type item_completed, run_* }
            $null = Wait-Job $job -Timeout 60
            $job.State | Should -Be 'Completed'
            $events = Receive-Job $job
            Remove-Job $job -Force
            # It returned on its own once the run ended, with the events written after it started.
            ($events | Where-Object Type -eq item_completed).Count | Should -Be 10
            $events[-1].Type | Should -Be 'run_completed'
            @($events.Sequence | Sort-Object -Unique).Count | Should -Be $events.Count
        } finally { Stop-ChildPwsh $child }
    }
}

Describe 'Retention' {
    BeforeEach {
        $root = New-Root
        $old = Start-Run -Name nightly -RunId 'old-1' -ScriptPath $script:clean -Root $root
        $failed = Start-Run -Name weekly -RunId 'failed-1' -ScriptPath $script:threeSteps -Root $root -ErrorAction SilentlyContinue
        Start-Sleep -Milliseconds 50
        $cut = Get-Date
        Start-Sleep -Milliseconds 50
        $new = Start-Run -Name nightly -RunId 'new-1' -ScriptPath $script:clean -Root $root
    }

    It 'Get-Run -Before lists the runs last updated before a time' {
        (Get-Run -Root $root -Before $cut).RunId | Should -Be @('failed-1', 'old-1')
        (Get-Run -Root $root -Before $cut.ToUniversalTime() -Name nightly).RunId | Should -Be 'old-1'
        Get-Run -Root $root -Before (Get-Date).AddDays(-1) | Should -BeNullOrEmpty
    }

    It 'Remove-Run -WhatIf deletes nothing; -Name, -Status and -Before all narrow the set' {
        Remove-Run -Root $root -Before (Get-Date).AddMinutes(1) -WhatIf
        (Get-Run -Root $root).Count | Should -Be 3
        Remove-Run -Root $root -Name nightly -Before $cut -Confirm:$false
        (Get-Run -Root $root).RunId | Should -Be @('failed-1', 'new-1')
        Remove-Run -Root $root -Status Failed -Confirm:$false
        (Get-Run -Root $root).RunId | Should -Be 'new-1'
    }

    It 'refuses Remove-Run without a filter' {
        { Remove-Run -Root $root -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'MissingMandatoryParameter*'
        { Remove-Run -Root $root -Before $null -Confirm:$false } | Should -Throw -ErrorId 'InvalidArgument*'
        (Get-Run -Root $root).Count | Should -Be 3
    }

    It 'never removes a running run: RunLocked, and the others go' {
        $child = $null
        try {
            $slow = Join-Path $TestDrive 'slow-r.ps1'
            Set-Content $slow "Invoke-RunStep work { Start-Sleep 30 }"
            $child = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Command "`$null = Start-Run -Name nightly -RunId 'live-1' -ScriptPath '$slow' -Root '$root'"
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            while ((Get-Run -RunId 'live-1' -Root $root -ErrorAction SilentlyContinue).Status -ne 'Running') {
                if ([DateTime]::UtcNow -gt $deadline) { throw "The run did not start: $(Get-ChildPwshOutput $child)" }
                Start-Sleep -Milliseconds 100
            }
            Remove-Run -Root $root -Name nightly -Confirm:$false -ErrorVariable errors -ErrorAction SilentlyContinue
            $errors.Count | Should -Be 1
            $errors[0].FullyQualifiedErrorId | Should -BeLike 'RunLocked*'
            (Get-Run -Root $root).RunId | Should -Be @('failed-1', 'live-1')
        } finally { if ($child) { Stop-ChildPwsh $child } }
    }
}

BeforeDiscovery {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    # Every cmdlet parameter that takes an existing run's id, from the module itself, so a new cmdlet
    # is covered without editing this list. Start-Run -RunId names a new run: nothing to complete.
    $script:runIdParameters = @(foreach ($c in Get-Command -Module RunTools -CommandType Cmdlet | Sort-Object Name) {
            foreach ($p in $c.Parameters.Values | Where-Object Name -Match 'RunId$' | Sort-Object Name) {
                if ($c.Name -ne 'Start-Run') { @{ Command = $c.Name; Parameter = $p.Name } }
            }
        })
    # Operator cmdlets select runs by -Name when they also take -RunId (Add-RunArtifact -Name is a file name).
    $script:runNameParameters = @(foreach ($c in Get-Command -Module RunTools -CommandType Cmdlet | Sort-Object Name) {
            if ($c.Parameters.ContainsKey('Name') -and $c.Parameters.ContainsKey('RunId') -and $c.Name -ne 'Start-Run') { @{ Command = $c.Name } }
        })
}

Describe 'Tab completion' {
    BeforeAll {
        $script:completionRoot = New-Root
        $null = Start-Run -Name 'nightly etl' -RunId 'tab-1' -ScriptPath $script:clean -Root $script:completionRoot
        $null = Start-Run -Name weekly -RunId 'other-1' -ScriptPath $script:clean -Root $script:completionRoot
    }

    It 'finds the parameters to test' -ForEach @(@{ Ids = $script:runIdParameters; Names = $script:runNameParameters }) {
        $Ids.Count | Should -BeGreaterOrEqual 10
        $Ids.Command | Should -Contain 'Compare-Run'
        $Names.Count | Should -BeGreaterOrEqual 5
    }

    It 'completes <Command> -<Parameter> with the run ids under -Root' -ForEach $script:runIdParameters {
        $line = "$Command -Root '$script:completionRoot' -$Parameter ta"
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be 'tab-1'
        $line = "$Command -Root '$script:completionRoot' -$Parameter "
        @((TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Sort-Object) | Should -Be @('other-1', 'tab-1')
    }

    It 'completes <Command> -Name with the run names under -Root, quoted when needed' -ForEach $script:runNameParameters {
        $line = "$Command -Root '$script:completionRoot' -Name nig"
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be "'nightly etl'"
    }

    It 'completes Get-Run -RunId and -Name, and -Name on Remove-Run and Wait-Run, from -Root' {
        $root = New-Root
        $null = Start-Run -Name 'nightly etl' -RunId 'tab-1' -ScriptPath $script:clean -Root $root
        $null = Start-Run -Name weekly -RunId 'other-1' -ScriptPath $script:clean -Root $root
        foreach ($line in "Get-Run -Root '$root' -RunId ta", "Remove-Run -Root '$root' -RunId ta", "Wait-Run -Root '$root' -RunId ta") {
            (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be 'tab-1'
        }
        foreach ($line in "Get-Run -Root '$root' -Name nig", "Remove-Run -Root '$root' -Name nig", "Wait-Run -Root '$root' -Name nig") {
            (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.CompletionText | Should -Be "'nightly etl'"
        }
    }
}

Describe 'Progress and verbose output of a run' {
    BeforeAll {
        # A fresh runspace collects every progress and verbose record the run writes.
        function Invoke-Captured([string] $Script) {
            $ps = [powershell]::Create()
            try {
                $null = $ps.AddScript("Import-Module '$env:RUNTOOLS_MODULE_PATH'; `$ProgressPreference = 'Continue'; $Script")
                $output = $ps.Invoke()
                [pscustomobject]@{ Output = $output; Progress = @($ps.Streams.Progress); Verbose = @($ps.Streams.Verbose.Message); Errors = @($ps.Streams.Error) }
            }
            finally { $ps.Dispose() }
        }
    }

    It 'shows the run as the parent activity, step N of M with a percent, and the items as its child' {
        $root = New-Root
        $r = Invoke-Captured "Start-Run -Name watched -ScriptPath '$script:clean' -Root '$root'"
        $r.Errors | Should -BeNullOrEmpty
        $run = @($r.Progress | Where-Object ActivityId -EQ 10)
        $run.StatusDescription | Should -Be @('extract: 0 of 2 steps done', 'upload: 1 of 2 steps done')
        $run.PercentComplete | Should -Be @(0, 50)
        $run[0].Activity | Should -BeLike 'Run watched (*), attempt 1'
        $items = @($r.Progress | Where-Object ActivityId -EQ 11)
        $items.Count | Should -BeGreaterOrEqual 2
        $items | ForEach-Object { $_.ParentActivityId | Should -Be 10 }
        $items[0].Activity | Should -Be 'Step upload'
        $items[-1].RecordType | Should -Be 'Completed'
        # The five-a-second throttle: five quick items write the first record and the completion only.
        $items.Count | Should -BeLessOrEqual 3
    }

    It 'shows a resume''s attempt and the steps already done' {
        $root = New-Root
        $first = Invoke-Captured "Start-Run -Name watched -RunId v-1 -ScriptPath '$script:threeSteps' -Root '$root' -Step extract"
        $first.Output.Status | Should -Be 'Stopped'
        $r = Invoke-Captured "Resume-Run -RunId v-1 -Root '$root' -ErrorAction SilentlyContinue"
        $steps = @($r.Progress | Where-Object ActivityId -EQ 10)
        $steps[0].StatusDescription | Should -Be 'extract: 1 of 3 steps done'
        $steps[1].StatusDescription | Should -Be 'upload: 1 of 3 steps done'
        $steps[1].PercentComplete | Should -Be 33
        $steps[0].Activity | Should -BeLike '*attempt 2'
    }
}

Describe '-Verbose' {
    It 'shows the attempt, its plan, and each replayed unit on Start-Run''s verbose stream, and nothing without it' {
        $root = New-Root
        $flag = Join-Path $TestDrive 'verbose.fail'
        Set-Content $flag 'fail once'
        $script = Join-Path $TestDrive 'verbose.ps1'
        Set-Content $script @'
param($Config, [string] $Flag)
Invoke-RunStep prepare { 'p' }
1..3 | Invoke-RunItem -Step work -Key { $_ } { if ($_ -eq 3 -and (Test-Path $Flag)) { throw 'not yet' }; "i$_" }
'@
        $first = @(Start-Run -Name verbose -ScriptPath $script -Root $root -Parameters @{ Flag = $flag } -Verbose -ErrorAction SilentlyContinue 4>&1)
        $info = $first | Where-Object { $_ -is [RunTools.RunInfo] }
        $info.Status | Should -Be 'Failed'
        $said = @($first | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message)
        $said | Should -Contain "Attempt 1 of run $($info.RunId): a new run; every step and item runs."

        Remove-Item $flag
        $second = @(Resume-Run -RunId $info.RunId -Root $root -Verbose 4>&1)
        ($second | Where-Object { $_ -is [RunTools.RunInfo] }).Status | Should -Be 'Completed'
        $said = @($second | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] } | ForEach-Object Message)
        $said | Should -Contain "Attempt 2 of run $($info.RunId) (was Failed): 1 completed step(s) replay their recorded output (prepare); 2 completed item(s) are skipped; nothing in doubt; first unfinished step: work."
        $said | Should -Contain "Step 'prepare' completed earlier; emitting its recorded output."
        $said | Should -Contain "Item '1' of step 'work' completed earlier; emitting its recorded output."
        $said | Should -Contain "Item '2' of step 'work' completed earlier; emitting its recorded output."
        $said | Where-Object { $_ -like "Item '3'*" } | Should -BeNullOrEmpty -Because 'item 3 ran in this attempt'

        $quiet = @(Resume-Run -RunId $info.RunId -Root $root 4>&1)
        @($quiet | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }) | Should -BeNullOrEmpty
    }
}
