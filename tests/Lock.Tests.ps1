# Issue 11, item 3 through the module: .lock is never opened through a link or into anything but
# a regular file, and RunLocked names the live holder from the lock file, not from run.json.
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    $script:itemsScript = Join-Path $PSScriptRoot 'scripts/items.ps1'
    $script:preciousText = "precious: never written through .lock`n"

    function New-Root { Join-Path $TestDrive ([guid]::NewGuid().ToString('N').Substring(0, 8)) }

    # A Failed run (item k002 throws while the flag exists): resumable, so Resume-Run takes the lock.
    function New-FailedRun([string] $Root, [string] $Id) {
        $flag = Join-Path $TestDrive "$Id.fail"
        Set-Content -Path $flag -Value 'fail'
        $effects = Join-Path $TestDrive "$Id.effects"
        Start-Run -Name $Id -RunId $Id -ScriptPath $itemsScript -Root $Root -Parameters @{ EffectsPath = $effects; Count = 3; FailOn = 'k002'; FailFlag = $flag } -ErrorAction SilentlyContinue | Out-Null
        (Get-Run -RunId $Id -Root $Root).Status | Should -Be 'Failed'
        Remove-Item $flag
        @{ EffectsPath = $effects; Count = 3 }
    }

    # Replaces the run's .lock by a link to precious.txt beside the run (the reported attack).
    function Set-LockLink([string] $Root, [string] $Id) {
        $precious = Join-Path $Root 'precious.txt'
        [IO.File]::WriteAllText($precious, $preciousText)
        $lock = Join-Path $Root "$Id/.lock"
        Remove-Item -LiteralPath $lock -Force
        New-Item -ItemType SymbolicLink -Path $lock -Target '../precious.txt' | Out-Null
        $precious
    }

    # Waits for a condition; fails at once if the child exits first, and says what it printed.
    function Wait-Until([scriptblock] $Condition, [int] $Seconds = 60, $Child) {
        $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
        while (-not (& $Condition)) {
            if ($Child.Process.HasExited -or [DateTime]::UtcNow -gt $deadline) {
                Stop-ChildPwsh $Child
                throw "the child exited or $Seconds s passed waiting for: $Condition`nThe child printed:`n$(Get-ChildPwshOutput $Child)"
            }
            Start-Sleep -Milliseconds 50
        }
    }
}

Describe 'A .lock that is a symbolic link' {
    It 'makes Test-Run and Resume-Run fail with LockFileInvalid and leaves the link target untouched' {
        $root = New-Root
        $parameters = New-FailedRun $root 'r1'
        $precious = Set-LockLink $root 'r1'
        $written = (Get-Item $precious).LastWriteTimeUtc

        $testErr = { Test-Run -RunId r1 -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'LockFileInvalid*' -PassThru
        $resumeErr = { Resume-Run -RunId r1 -Root $root -Parameters $parameters -ErrorAction Stop } | Should -Throw -ErrorId 'LockFileInvalid*' -PassThru

        foreach ($err in $testErr, $resumeErr) {
            $err.Exception.Message | Should -BeLike "*$(Join-Path $root 'r1/.lock')*symbolic link*"
            $err.CategoryInfo.Category | Should -Be 'InvalidData'
        }
        [IO.File]::ReadAllText($precious) | Should -BeExactly $preciousText
        (Get-Item $precious).LastWriteTimeUtc | Should -Be $written
        $run = Get-Run -RunId r1 -Root $root
        $run.Status | Should -Be 'Failed'
        $run.Attempt | Should -Be 1
    }

    It 'makes Remove-Run and Export-RunArchive fail with LockFileInvalid: the run stays, nothing is written' {
        $root = New-Root
        New-FailedRun $root 'r2' | Out-Null
        $precious = Set-LockLink $root 'r2'
        $archive = Join-Path $TestDrive 'r2.zip'

        { Remove-Run -RunId r2 -Root $root -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'LockFileInvalid*'
        { Export-RunArchive -RunId r2 -Root $root -DestinationPath $archive -Force -ErrorAction Stop } | Should -Throw -ErrorId 'LockFileInvalid*'

        Test-Path (Join-Path $root 'r2/run.json') | Should -BeTrue
        Test-Path $archive | Should -BeFalse
        [IO.File]::ReadAllText($precious) | Should -BeExactly $preciousText
    }

    It 'is fixed by deleting the link, as the message says' {
        $root = New-Root
        $parameters = New-FailedRun $root 'r3'
        $precious = Set-LockLink $root 'r3'
        Remove-Item -LiteralPath (Join-Path $root 'r3/.lock') -Force

        (Resume-Run -RunId r3 -Root $root).Status | Should -Be 'Completed'
        [IO.File]::ReadAllText($precious) | Should -BeExactly $preciousText
        (Get-Item -Force (Join-Path $root 'r3/.lock')).LinkTarget | Should -BeNullOrEmpty   # -Force: a dot file is hidden
    }
}

Describe 'A .lock that is a directory' {
    It 'makes Resume-Run fail with LockFileInvalid, not RunLocked' {
        $root = New-Root
        $parameters = New-FailedRun $root 'd1'
        $lock = Join-Path $root 'd1/.lock'
        Remove-Item -LiteralPath $lock -Force
        New-Item -ItemType Directory -Path $lock | Out-Null

        $err = { Resume-Run -RunId d1 -Root $root -Parameters $parameters -ErrorAction Stop } | Should -Throw -ErrorId 'LockFileInvalid*' -PassThru
        $err.Exception.Message | Should -BeLike '*is a directory*'
    }
}

Describe 'RunLocked' {
    It 'names the child pwsh that holds the run by its real pid, not the owner run.json records' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'held.effects'
        # k002 hangs after its side effect: the child holds the run and writes no more snapshots.
        $child = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Command "Start-Run -Name held -RunId held -ScriptPath '$itemsScript' -Root '$root' -Parameters @{ EffectsPath = '$effects'; Count = 3; HangOn = 'k002' }"
        try {
            Wait-Until { (Test-Path $effects) -and (Get-Content $effects) -contains 'k002' } -Child $child

            # A stale owner in run.json, as a dead earlier attempt leaves it.
            $statePath = Join-Path $root 'held/run.json'
            $state = [IO.File]::ReadAllText($statePath)
            $planted = [regex]::Replace($state, '("owner":\s*\{\s*"pid":\s*)\d+', '${1}424242')
            $planted | Should -Not -Be $state
            [IO.File]::WriteAllText($statePath, $planted)

            $first = { Resume-Run -RunId held -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'RunLocked*' -PassThru
            $second = { Resume-Run -RunId held -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'RunLocked*' -PassThru
            foreach ($err in $first, $second) {
                $err.Exception.Message | Should -Match "process $($child.Id)@"
                $err.Exception.Message | Should -Not -Match '424242'
                $err.Exception.Owner.ProcessId | Should -Be $child.Id
            }
            { Remove-Run -RunId held -Root $root -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'RunLocked*'
            (Get-Run -RunId held -Root $root).Status | Should -Be 'Running'
        } finally {
            Stop-ChildPwsh $child
        }

        # Killed, the child holds nothing: the run reads Interrupted.
        (Get-Run -RunId held -Root $root).Status | Should -Be 'Interrupted'
    }
}
