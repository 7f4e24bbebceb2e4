# In-script cmdlets called where they cannot record (issue 12, "wrong use fails loudly"): from
# another runspace of a running attempt the call fails and so does the run (never Completed); after
# the attempt ended the call fails and records nothing; in a Start-Job process it fails alone.
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force

    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    # A folder, or with RUNTOOLS_TEST_STORE 'postgresql' a fresh schema (tests/StoreContract.Tests.ps1).
    function New-Root { New-TestRoot -Under $TestDrive }

    function New-Script([string] $Text) {
        $path = Join-Path $TestDrive ("wrong-use-{0}.ps1" -f [guid]::NewGuid().ToString('N').Substring(0, 8))
        Set-Content -LiteralPath $path -Value $Text
        $path
    }

    # Starts a run of $Text; returns the RunInfo, the errors Start-Run wrote, and the journal's event types.
    function Invoke-WrongUseRun([string] $Text, [hashtable] $Parameters = @{}) {
        $root = New-Root
        $Parameters.Module = $env:RUNTOOLS_MODULE_PATH
        $run = Start-Run -Name wrong -ScriptPath (New-Script $Text) -Root $root -Parameters $Parameters -ErrorVariable failures -ErrorAction SilentlyContinue 6>$null
        [pscustomobject]@{
            Run = $run; Root = $root; Errors = @($failures)
            Events = @(Get-RunEvent -RunId $run.RunId -Root $root | ForEach-Object Type)
        }
    }

    # The ErrorId of the error that failed the run: RunFailed's inner exception (a RunTools error, or a script error's record).
    function Get-CauseId($Record) {
        $inner = $Record.Exception.InnerException
        if ($inner.ErrorId) { $inner.ErrorId } else { $inner.ErrorRecord.FullyQualifiedErrorId }
    }
}

Describe 'ForEach-Object -Parallel in a run script' {
    It 'fails the run with WrongRunspace even when the parallel blocks swallow their errors; each call fails loudly' {
        $seen = Join-Path $TestDrive 'seen-parallel'
        $null = New-Item -ItemType Directory $seen
        $result = Invoke-WrongUseRun -Parameters @{ Seen = $seen } @'
param($Module, $Seen)
Invoke-RunStep work {
    1..3 | ForEach-Object -Parallel {
        Import-Module $using:Module
        $n = $_
        try { Invoke-RunItem -InputObject $n -Key { "$_" } -Step inner { $_ } }
        catch { Set-Content -LiteralPath (Join-Path $using:Seen "$n.txt") -Value ($_.FullyQualifiedErrorId + '|' + $_.Exception.Message) }
    }
}
'@
        $result.Run.Status | Should -Be 'Failed'
        $result.Run.ItemsCompleted | Should -Be 0
        $result.Errors.FullyQualifiedErrorId | Should -Be 'RunFailed,RunTools.StartRunCommand'
        Get-CauseId $result.Errors[0] | Should -Be 'WrongRunspace'
        $result.Errors[0].Exception.Message | Should -BeLike "*step 'work' failed: Invoke-RunItem was called from another runspace*Invoke-RunItem -ThrottleLimit*"
        $result.Events | Should -Contain 'step_failed'
        $result.Events | Should -Not -Contain 'step_completed'
        $result.Events | Should -Not -Contain 'item_started'

        $calls = @(Get-ChildItem $seen -File | Get-Content)
        $calls.Count | Should -Be 3
        foreach ($call in $calls) {
            $id, $message = $call -split '\|', 2
            $id | Should -Be 'WrongRunspace,RunTools.InvokeRunItemCommand'
            $message | Should -BeLike "*of run '$($result.Run.RunId)'*use Invoke-RunItem -ThrottleLimit instead of ForEach-Object -Parallel*"
        }
    }

    It 'fails the run under the default Stop preference with the WrongRunspace message, not NotInRun' {
        $result = Invoke-WrongUseRun @'
param($Module)
Invoke-RunStep work {
    1..2 | ForEach-Object -Parallel { Import-Module $using:Module; Get-RunContext }
}
'@
        $result.Run.Status | Should -Be 'Failed'
        Get-CauseId $result.Errors[0] | Should -BeLike 'WrongRunspace*'
        $result.Errors[0].Exception.Message | Should -BeLike '*Get-RunContext was called from another runspace*'
        $result.Errors[0].Exception.Message | Should -Not -BeLike '*NotInRun*'
    }

    It 'fails a run whose wrong use is outside any step, with errors ignored, at the end instead of completing it' {
        $result = Invoke-WrongUseRun @'
param($Module)
$ErrorActionPreference = 'Continue'
Invoke-RunStep before { 'b' }
1..2 | ForEach-Object -Parallel { Import-Module $using:Module; Add-RunArtifact -Path $using:PSCommandPath } 2>$null
'@
        $result.Run.Status | Should -Be 'Failed'
        Get-CauseId $result.Errors[0] | Should -Be 'WrongRunspace'
        $result.Errors[0].Exception.Message | Should -BeLike '*Add-RunArtifact was called from another runspace*'
        $result.Events | Should -Contain 'step_completed'   # the step before the wrong use stays done
        $result.Events[-1] | Should -Be 'run_failed'
        $result.Events | Should -Not -Contain 'artifact_added'
    }

    It 'stops the run script at its next step boundary' {
        $marker = Join-Path $TestDrive 'after-boundary.txt'
        $result = Invoke-WrongUseRun -Parameters @{ Marker = $marker } @'
param($Module, $Marker)
$ErrorActionPreference = 'Continue'
1 | ForEach-Object -Parallel { Import-Module $using:Module; Get-RunContext } 2>$null
Invoke-RunStep next { Set-Content -LiteralPath $Marker -Value ran }
'@
        $result.Run.Status | Should -Be 'Failed'
        Get-CauseId $result.Errors[0] | Should -Be 'WrongRunspace'
        $marker | Should -Not -Exist
        $result.Events | Should -Not -Contain 'step_started'
    }

    It 'fails the item whose body made the wrong use instead of recording it done' {
        $result = Invoke-WrongUseRun @'
param($Module)
Invoke-RunStep work {
    'a', 'b' | Invoke-RunItem -Key { $_ } {
        1 | ForEach-Object -Parallel { Import-Module $using:Module; try { Get-RunContext } catch { } }
        "did $_"
    }
}
'@
        $result.Run.Status | Should -Be 'Failed'
        Get-CauseId $result.Errors[0] | Should -Be 'WrongRunspace'
        $result.Errors[0].Exception.Message | Should -BeLike "*item 'a' of step 'work' failed: Get-RunContext was called from another runspace*"
        $result.Events | Should -Contain 'item_failed'
        $result.Events | Should -Not -Contain 'item_completed'
        @($result.Events | Where-Object { $_ -eq 'item_started' }).Count | Should -Be 1
    }

    It 'leaves Invoke-RunItem -ThrottleLimit working, with Get-RunContext and Add-RunArtifact inside the items' {
        $result = Invoke-WrongUseRun @'
param($Module)
Invoke-RunStep work {
    1..4 | Invoke-RunItem -Key { "k$_" } -ThrottleLimit 2 {
        $file = Join-Path (Get-RunContext).Path "item$_.txt"
        Set-Content -LiteralPath $file -Value $_
        Add-RunArtifact -Path $file | Out-Null
        (Get-RunContext).CurrentItem
    }
}
'@
        $result.Errors | Should -BeNullOrEmpty
        $result.Run.Status | Should -Be 'Completed'
        $result.Run.ItemsCompleted | Should -Be 4
        @($result.Events | Where-Object { $_ -eq 'artifact_added' }).Count | Should -Be 4
    }
}

Describe 'Jobs started from a run script' {
    It 'fails the run when a thread job calls an in-script cmdlet, even if its errors are never received' {
        $seen = Join-Path $TestDrive 'seen-threadjob.txt'
        $result = Invoke-WrongUseRun -Parameters @{ Seen = $seen } @'
param($Module, $Seen)
Invoke-RunStep work {
    $job = Start-ThreadJob { Import-Module $using:Module; Invoke-RunStep inner { 1 } }
    $null = Wait-Job $job -Timeout 60
    $job.Error | ForEach-Object { $_.FullyQualifiedErrorId + '|' + $_.TargetObject } | Set-Content -LiteralPath $Seen
    Remove-Job $job
    'done'
}
'@
        $result.Run.Status | Should -Be 'Failed'
        Get-CauseId $result.Errors[0] | Should -Be 'WrongRunspace'
        $result.Errors[0].Exception.Message | Should -BeLike '*Invoke-RunStep was called from another runspace*thread job*'
        Get-Content $seen | Should -Be "WrongRunspace,RunTools.InvokeRunStepCommand|$($result.Run.RunId)"
        $result.Events | Should -Not -Contain 'step_completed'
    }

    It 'fails the call in a Start-Job process with NotInRun, and the run through Receive-Job' {
        $result = Invoke-WrongUseRun @'
param($Module)
Invoke-RunStep work {
    Start-Job { Import-Module $using:Module; Get-RunContext } | Wait-Job -Timeout 120 | Receive-Job -AutoRemoveJob -Wait
}
'@
        $result.Run.Status | Should -Be 'Failed'
        Get-CauseId $result.Errors[0] | Should -BeLike 'NotInRun*'
        $result.Errors[0].Exception.Message | Should -BeLike '*Start-Job runs in another process*Invoke-RunItem -ThrottleLimit*'
    }
}

Describe 'After the attempt ended' {
    It 'fails a script block kept from the run with RunEnded and records nothing' {
        $result = Invoke-WrongUseRun @'
param($Module)
Invoke-RunStep work { 'w' }
$global:RunToolsKept = { Invoke-RunStep late { 'late' } }
'@
        $result.Run.Status | Should -Be 'Completed'
        $before = @(Get-RunEvent -RunId $result.Run.RunId -Root $result.Root).Count

        { & $global:RunToolsKept } | Should -Throw -ErrorId 'RunEnded,RunTools.InvokeRunStepCommand'
        $err = $null
        try { & $global:RunToolsKept } catch { $err = $_ }
        $err.Exception.Message | Should -BeLike "Invoke-RunStep was called after attempt 1 of run '$($result.Run.RunId)' ended*nothing was recorded*"
        $err.TargetObject | Should -Be $result.Run.RunId

        @(Get-RunEvent -RunId $result.Run.RunId -Root $result.Root).Count | Should -Be $before
        (Get-Run -RunId $result.Run.RunId -Root $result.Root).Status | Should -Be 'Completed'
        Remove-Variable -Name RunToolsKept -Scope Global
    }

    It 'fails a thread job that outlives the run with RunEnded; the finished run is left as it was' {
        $gate = Join-Path $TestDrive 'late-gate.txt'
        $result = Invoke-WrongUseRun -Parameters @{ Gate = $gate } @'
param($Module, $Gate)
$global:RunToolsLateJob = Start-ThreadJob {
    Import-Module $using:Module
    $deadline = [DateTime]::UtcNow.AddSeconds(60)
    while (-not (Test-Path -LiteralPath $using:Gate) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
    Add-RunArtifact -Path $using:Gate
}
Invoke-RunStep work { 'w' }
'@
        $result.Run.Status | Should -Be 'Completed'
        $before = @(Get-RunEvent -RunId $result.Run.RunId -Root $result.Root).Count
        Set-Content -LiteralPath $gate -Value go
        $job = $global:RunToolsLateJob
        $null = Wait-Job $job -Timeout 60
        $job.State | Should -Be 'Completed'   # a cmdlet's terminating error ends its statement, not the job's script
        @($job.Error).Count | Should -Be 1
        $job.Error[0].FullyQualifiedErrorId | Should -Be 'RunEnded,RunTools.AddRunArtifactCommand'
        $job.Error[0].Exception.Message | Should -BeLike "*after attempt 1 of run '$($result.Run.RunId)' ended*"
        @(Get-RunEvent -RunId $result.Run.RunId -Root $result.Root).Count | Should -Be $before
        Remove-Job $job -Force
        Remove-Variable -Name RunToolsLateJob -Scope Global
    }

    It 'fails the run script run again without Start-Run with RunEnded, and a call at the prompt with NotInRun' {
        $script = New-Script 'Invoke-RunStep work { "w" }'
        $root = New-Root
        (Start-Run -Name again -ScriptPath $script -Root $root).Status | Should -Be 'Completed'
        { & $script } | Should -Throw -ErrorId 'RunEnded,RunTools.InvokeRunStepCommand'
        { Invoke-RunStep work { 'w' } } | Should -Throw -ErrorId 'NotInRun,RunTools.InvokeRunStepCommand'
    }
}
