# The contract a scheduler and an operator see (issue 12): start-or-resume, saved parameters,
# exit codes, failed items set aside. Jobs run in real child pwsh processes, killed for real.
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    $script:job = Join-Path $PSScriptRoot 'scripts/scheduled-job.ps1'
    $script:itemsScript = Join-Path $PSScriptRoot 'scripts/items.ps1'

    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    # A folder, or with RUNTOOLS_TEST_STORE 'postgresql' a fresh schema (tests/StoreContract.Tests.ps1).
    function New-Root { New-TestRoot -Under $TestDrive }

    function Quote([string] $Text) { "'" + ($Text -replace "'", "''") + "'" }

    # The scheduled job's command line, as -Command text (the same text every time it is run).
    function Get-JobCommand([string] $Root, [string] $Effects, [string] $Extra = '') {
        "& $(Quote $job) -Root $(Quote $Root) -EffectsPath $(Quote $Effects) $Extra"
    }

    # A real 'pwsh -File <job> <args>' process; the handle works with Wait-ChildPwsh and Stop-ChildPwsh.
    function Start-FilePwsh([string[]] $Arguments) {
        $pwsh = Get-PwshCommand
        $info = [Diagnostics.ProcessStartInfo]::new($pwsh.FilePath)
        foreach ($a in @($pwsh.Prefix) + @('-NoProfile', '-NonInteractive', '-File', $job) + $Arguments) { $info.ArgumentList.Add($a) }
        $info.UseShellExecute = $false
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $info.RedirectStandardInput = $true
        $info.Environment['RUNTOOLS_MODULE_PATH'] = $env:RUNTOOLS_MODULE_PATH
        $info.Environment['NO_COLOR'] = '1'
        $info.Environment['POWERSHELL_TELEMETRY_OPTOUT'] = '1'
        $process = [Diagnostics.Process]::Start($info)
        $process.StandardInput.Close()
        [pscustomobject]@{
            Id = $process.Id; Process = $process; Command = "-File $job $Arguments"
            Stdout = $process.StandardOutput.ReadToEndAsync(); Stderr = $process.StandardError.ReadToEndAsync()
        }
    }

    function Invoke-FilePwsh([string[]] $Arguments) {
        $child = Start-FilePwsh $Arguments
        $code = Wait-ChildPwsh -Child $child -TimeoutSec 120
        [pscustomobject]@{ ExitCode = $code; Output = $child.Stdout.Result + $child.Stderr.Result }
    }

    function Get-Effects([string] $Path) { if (Test-Path $Path) { @(Get-Content $Path | Where-Object { $_ }) } else { @() } }

    function Wait-Until([scriptblock] $Condition, $Child, [int] $Seconds = 90) {
        $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
        while (-not (& $Condition)) {
            if ($Child.Process.HasExited -or [DateTime]::UtcNow -gt $deadline) {
                Stop-ChildPwsh $Child
                throw "gave up waiting for: $Condition`nThe child printed:`n$(Get-ChildPwshOutput $Child)"
            }
            Start-Sleep -Milliseconds 50
        }
    }

    $script:keys = 1..30 | ForEach-Object { 'k{0:D3}' -f $_ }
}

Describe 'Start-Run -Resume: the scheduled-task pattern' {
    It 'continues a job killed midway with the same command line and does only the rest' {
        $root = New-Root; $effects = Join-Path $TestDrive "effects-$(New-Guid)"
        $command = Get-JobCommand $root $effects '-Count 30 -DelayMilliseconds 150'
        $child = Start-ChildPwsh -Command $command
        Wait-Until { (Get-Effects $effects).Count -ge 8 } $child
        Stop-ChildPwsh $child
        $before = Get-Effects $effects
        $stamp = Get-Content "$effects.prepared"
        $run = Get-Run -Root $root
        Wait-RunInterrupted -RunId $run.RunId -Root $root | Should -Be Interrupted

        $second = Invoke-ChildPwsh -Command "$command; exit `$LASTEXITCODE" -TimeoutSec 120
        $second.ExitCode | Should -Be 0 -Because $second.Error

        $runs = @(Get-Run -Root $root)
        $runs.Count | Should -Be 1 -Because 'the same command line continues the run instead of starting another'
        $runs[0].Status | Should -Be Completed
        $runs[0].Attempt | Should -Be 2
        $runs[0].ItemsCompleted | Should -Be 30
        $after = Get-Effects $effects
        $rerun = @($after | Select-Object -Skip $before.Count)
        # Only the rest ran: keys done before the kill never again; the one in flight (in doubt) at most once more.
        ($after | Sort-Object -Unique) | Should -Be $keys
        @($rerun | Where-Object { $_ -in $before }).Count | Should -BeLessOrEqual 1
        $rerun.Count | Should -BeLessOrEqual (30 - $before.Count + 1)
        Get-Content "$effects.prepared" | Should -Be $stamp -Because 'the completed prepare step is replayed, not run again'

        $started = Get-RunEvent -RunId $runs[0].RunId -Root $root -Type attempt_started
        $started[0].Data.started_by | Should -Be 'start-or-resume'
        $started[1].Data.started_by | Should -Be 'start-or-resume'
        $started[1].Data.resumed | Should -BeTrue
        ($second.Output + $second.Error) | Should -Match "Resuming run $($runs[0].RunId) \(was Interrupted"
    }

    It 'starts a new run when every run of that name is completed' {
        $root = New-Root; $effects = Join-Path $TestDrive "effects-$(New-Guid)"
        $first = Start-Run -Name nightly -ScriptPath $itemsScript -Root $root -Parameters @{ EffectsPath = $effects; Count = 2 }
        $second = Start-Run -Name nightly -ScriptPath $itemsScript -Root $root -Parameters @{ EffectsPath = $effects; Count = 2 } -Resume -Verbose 4>&1
        $info = $second | Where-Object { $_ -is [RunTools.RunInfo] }
        $info.RunId | Should -Not -Be $first.RunId
        $info.Status | Should -Be Completed
        ($second | Where-Object { $_ -is [Management.Automation.VerboseRecord] }).Message | Should -Contain "No unfinished run named 'nightly' under $($first.Root); starting a new run."
        (Get-Effects $effects).Count | Should -Be 4
    }

    It 'refuses a running run with RunLocked (exit code 4) and leaves it running' {
        $root = New-Root; $effects = Join-Path $TestDrive "effects-$(New-Guid)"
        $owner = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Command "Start-Run -Name nightly -ScriptPath $(Quote $itemsScript) -Root $(Quote $root) -Parameters @{ EffectsPath = $(Quote $effects); Count = 30; HangOn = 'k002' }"
        try {
            Wait-Until { (Get-Effects $effects) -contains 'k002' } $owner
            $refused = Invoke-FilePwsh @('-Root', $root, '-EffectsPath', $effects, '-Count', '30')
            $refused.ExitCode | Should -Be 4
            $refused.Output | Should -Match 'is owned by process'
            (Get-Run -Root $root).Status | Should -Be Running
            (Get-Effects $effects) | Should -Be @('k001', 'k002')
        }
        finally { Stop-ChildPwsh $owner }
    }
}

Describe 'Parameters are part of the run' {
    BeforeAll {
        $script:paramScript = Join-Path $TestDrive 'params.ps1'
        # Stops itself (Stop-Run) between its steps while the flag file exists, so the run stays resumable.
        Set-Content $paramScript @'
param($Config, [int] $DelayMs = 0, [string] $Target = 'none', [switch] $Fast, [string] $StopFlag)
Invoke-RunStep first { "first DelayMs=$DelayMs Target=$Target Fast=$Fast x=$($Config.x)" } | Out-Null
if ($StopFlag -and (Test-Path $StopFlag)) { Stop-Run -RunId (Get-RunContext).RunId -Root (Get-RunContext).Root | Out-Null }
Invoke-RunStep second { Add-Content -Path (Join-Path (Get-RunContext).Path seen.txt) -Value "DelayMs=$DelayMs Target=$Target Fast=$Fast x=$($Config.x)" }
'@
        function New-StoppedRun([string] $Root, [hashtable] $Parameters) {
            $flag = Join-Path $TestDrive "stop-$(New-Guid)"; New-Item -ItemType File $flag | Out-Null
            $Parameters.StopFlag = $flag
            $run = Start-Run -Name p -ScriptPath $paramScript -Root $Root -Parameters $Parameters
            $run.Status | Should -Be Stopped
            Remove-Item $flag
            $run
        }
    }

    It 'saves them canonically and hashed, and replays them on a resume that passes none' {
        $root = New-Root
        $run = New-StoppedRun $root @{ DelayMs = 100; Target = 'A'; Fast = [switch]::Present }
        $saved = Get-Content -Raw (Join-Path (Get-RunFolder $run) parameters.json)
        $saved | Should -BeLike '{"DelayMs":100,"Fast":true,"StopFlag":"*","Target":"A"}'
        $hash = [BitConverter]::ToString([Security.Cryptography.SHA256]::HashData([IO.File]::ReadAllBytes((Join-Path (Get-RunFolder $run) parameters.json)))).Replace('-', '').ToLower()
        if ($run.Path) { (Get-Content -Raw (Join-Path (Get-RunFolder $run) run.json) | ConvertFrom-Json).parameters_hash | Should -Be $hash } # run.json is a run folder's file
        (Get-RunEvent -RunId $run.RunId -Root $root -Type run_created).Data.parameters_hash | Should -Be $hash

        $resumed = Resume-Run -RunId $run.RunId -Root $root
        $resumed.Status | Should -Be Completed
        Get-Content (Join-Path (Get-RunFolder $run) seen.txt) | Should -Be 'DelayMs=100 Target=A Fast=True x='
    }

    It 'refuses changed parameters with the changed keys (ParametersDrift) and accepts them with -Force, journaled' {
        $root = New-Root
        $run = New-StoppedRun $root @{ DelayMs = 100; Target = 'A' }
        $stopFlag = (Get-Content -Raw (Join-Path (Get-RunFolder $run) parameters.json) | ConvertFrom-Json).StopFlag
        { Resume-Run -RunId $run.RunId -Root $root -Parameters @{ DelayMs = 0; Target = 'A'; StopFlag = $stopFlag; Extra = 1 } -ErrorAction Stop } |
            Should -Throw -ErrorId 'ParametersDrift*' -ExpectedMessage '*parameters changed*Changed: DelayMs*Added: Extra*-Force*'
        (Get-Run -RunId $run.RunId -Root $root).Status | Should -Be Stopped
        (Get-RunEvent -RunId $run.RunId -Root $root -Type resume_refused).Data.reason | Should -Be 'drift'

        $resumed = Resume-Run -RunId $run.RunId -Root $root -Parameters @{ DelayMs = 0; Target = 'A'; StopFlag = $stopFlag; Extra = 1 } -Force -WarningAction SilentlyContinue
        $resumed.Status | Should -Be Completed
        Get-Content (Join-Path (Get-RunFolder $run) seen.txt) | Should -Be 'DelayMs=0 Target=A Fast=False x='
        $accepted = Get-RunEvent -RunId $run.RunId -Root $root -Type parameters_drift_accepted
        $accepted.Data.changes.path | Should -Be @('DelayMs', 'Extra')
        Test-Path (Join-Path (Get-RunFolder $run) 'history/attempt-1/parameters.json') | Should -BeTrue
        (Get-Content -Raw (Join-Path (Get-RunFolder $run) parameters.json)) | Should -BeLike '{"DelayMs":0,"Extra":1,*'
    }

    It 'treats -Parameters @{Config=...} as the config: saved as config.json, drift-checked as config' {
        $root = New-Root
        $run = New-StoppedRun $root @{ Config = @{ x = 1 }; Target = 'A' }
        $run.ConfigHash | Should -Be (Start-Run -Name c -ScriptPath $paramScript -Root $root -Config @{ x = 1 }).ConfigHash
        Get-Content -Raw (Join-Path (Get-RunFolder $run) parameters.json) | Should -Not -BeLike '*Config*'
        { Resume-Run -RunId $run.RunId -Root $root -Parameters @{ Config = @{ x = 2 } } -ErrorAction Stop } |
            Should -Throw -ErrorId 'ConfigDrift*' -ExpectedMessage '*Changed: x*'
        $resumed = Resume-Run -RunId $run.RunId -Root $root
        $resumed.Status | Should -Be Completed
        Get-Content (Join-Path (Get-RunFolder $run) seen.txt) | Should -Be 'DelayMs=0 Target=A Fast=False x=1'
    }

    It 'refuses a value that cannot be saved (InvalidParameters) before creating a run' {
        $root = New-Root
        { Start-Run -Name p -ScriptPath $paramScript -Root $root -Parameters @{ Target = { 'live' } } -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidParameters*' -ExpectedMessage "*the value of 'Target'*ScriptBlock*"
        Get-Run -Root $root | Should -BeNullOrEmpty
    }

    It 'keeps a run that saved no parameters working: nothing to compare, the given ones are used' {
        $root = New-Root
        # Stopped by the step gate, started without -Parameters: like a run from before they were saved.
        $run = Start-Run -Name old -ScriptPath $paramScript -Root $root -Step first
        $run.Status | Should -Be Stopped
        Test-Path (Join-Path (Get-RunFolder $run) parameters.json) | Should -BeFalse
        if ($run.Path) { (Get-Content -Raw (Join-Path (Get-RunFolder $run) run.json) | ConvertFrom-Json).parameters_hash | Should -BeNullOrEmpty } # run.json is a run folder's file
        $resumed = Resume-Run -RunId $run.RunId -Root $root -Parameters @{ Target = 'B' }
        $resumed.Status | Should -Be Completed
        Get-Content (Join-Path (Get-RunFolder $run) seen.txt) | Should -Be 'DelayMs=0 Target=B Fast=False x='
    }
}

Describe 'Exit codes for pwsh -File and -Command' {
    It 'pwsh -File job.ps1 ending with exit $LASTEXITCODE: Completed 0, Failed 1, Stopped 3' {
        $root = New-Root; $effects = Join-Path $TestDrive "effects-$(New-Guid)"
        (Invoke-FilePwsh @('-Root', $root, '-EffectsPath', $effects, '-Count', '3')).ExitCode | Should -Be 0

        $root = New-Root; $flag = Join-Path $TestDrive "fail-$(New-Guid)"; New-Item -ItemType File $flag | Out-Null
        $failed = Invoke-FilePwsh @('-Root', $root, '-EffectsPath', $effects, '-Count', '3', '-FailOn', 'k002', '-FailFlag', $flag)
        $failed.ExitCode | Should -Be 1
        (Get-Run -Root $root).Status | Should -Be Failed

        $root = New-Root
        $stopped = Invoke-FilePwsh @('-Root', $root, '-EffectsPath', $effects, '-Count', '30', '-DelayMilliseconds', '200', '-TimeoutSec', '1')
        $stopped.ExitCode | Should -Be 3
        (Get-Run -Root $root).Status | Should -Be Stopped
    }

    It 'pwsh -File job.ps1 exits 4 when PowerShell refuses a parameter before Start-Run runs (the pattern sets 4 first), and starts no run' {
        $root = New-Root; $effects = Join-Path $TestDrive "effects-$(New-Guid)"
        $refused = Invoke-FilePwsh @('-Root', $root, '-EffectsPath', $effects, '-Count', '3', '-TimeoutSec', '-5')
        $refused.Output | Should -Match 'TimeoutSec'
        $refused.ExitCode | Should -Be 4
        @(Get-Run -Root $root -ErrorAction SilentlyContinue) | Should -BeNullOrEmpty
    }

    It 'pwsh -File without exit $LASTEXITCODE exits 0 even for a failed run (why the pattern ends with it)' {
        $root = New-Root; $effects = Join-Path $TestDrive "effects-$(New-Guid)"
        $flag = Join-Path $TestDrive "fail-$(New-Guid)"; New-Item -ItemType File $flag | Out-Null
        $result = Invoke-FilePwsh @('-Root', $root, '-EffectsPath', $effects, '-Count', '3', '-FailOn', 'k002', '-FailFlag', $flag, '-NoExit')
        (Get-Run -Root $root).Status | Should -Be Failed
        $result.ExitCode | Should -Be 0
    }

    It 'pwsh -Command "...; exit $LASTEXITCODE": Failed 1, refused 4, Stopped 3, Completed 0' {
        function Invoke-Command([string] $Text) {
            # 'Continue': a failed run's RunFailed error is then not terminating, and the exit statement runs.
            Invoke-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Command "`$ErrorActionPreference = 'Continue'; $Text; exit `$LASTEXITCODE"
        }
        $root = New-Root; $effects = Join-Path $TestDrive "effects-$(New-Guid)"
        $flag = Join-Path $TestDrive "fail-$(New-Guid)"; New-Item -ItemType File $flag | Out-Null
        (Invoke-Command "Start-Run -Name n -ScriptPath $(Quote $itemsScript) -Root $(Quote $root) -Parameters @{ EffectsPath = $(Quote $effects); Count = 3; FailOn = 'k002'; FailFlag = $(Quote $flag) }").ExitCode | Should -Be 1
        $id = (Get-Run -Root $root).RunId
        $refused = Invoke-Command "Resume-Run -RunId $id -Root $(Quote $root) -Parameters @{ EffectsPath = $(Quote $effects); Count = 4 }"
        $refused.ExitCode | Should -Be 4
        $refused.Error | Should -Match 'its parameters changed .*Changed: Count'
        Remove-Item $flag
        (Invoke-Command "Resume-Run -RunId $id -Root $(Quote $root)").ExitCode | Should -Be 0

        $root = New-Root
        (Invoke-Command "Start-Run -Name n -ScriptPath $(Quote $itemsScript) -Root $(Quote $root) -TimeoutSec 1 -Parameters @{ EffectsPath = $(Quote $effects); Count = 30; DelayMilliseconds = 200 }").ExitCode | Should -Be 3
        (Get-Run -Root $root).Status | Should -Be Stopped
    }
}

Describe 'Resume-Run -Failed Skip: a poison item set aside' {
    It 'journals the decision per failed key, never runs the key again, and counts it skipped' {
        $root = New-Root; $effects = Join-Path $TestDrive "effects-$(New-Guid)"
        $flag = Join-Path $TestDrive "fail-$(New-Guid)"; New-Item -ItemType File $flag | Out-Null
        $parameters = @{ EffectsPath = $effects; Count = 5; FailOn = 'k003'; FailFlag = $flag }
        $run = Start-Run -Name poison -ScriptPath $itemsScript -Root $root -Parameters $parameters -ErrorAction SilentlyContinue
        $run.Status | Should -Be Failed

        $retried = Resume-Run -RunId $run.RunId -Root $root -ErrorAction SilentlyContinue
        $retried.Status | Should -Be Failed -Because 'Retry (the default) runs the poison item again'
        @(Get-RunEvent -RunId $run.RunId -Root $root -Type item_failed | Where-Object Key -eq k003).Count | Should -Be 2

        $skipped = Resume-Run -RunId $run.RunId -Root $root -Failed Skip -WarningVariable warnings -WarningAction SilentlyContinue
        $skipped.Status | Should -Be Completed
        $skipped.ItemsSkipped | Should -Be 1
        $skipped.ItemsCompleted | Should -Be 4
        $warnings | Should -Match "Item 'k003' of step 'work' failed earlier and is set aside"
        $decision = Get-RunEvent -RunId $run.RunId -Root $root -Type item_resolved
        $decision.Key | Should -Be 'k003'
        $decision.Data.resolution | Should -Be 'skip'
        $decision.Data.previous | Should -Be 'failed'
        $decision.Data.decided_by | Should -Be "$([Environment]::UserName)@$([Environment]::MachineName)"
        (Get-Effects $effects) | Should -Not -Contain 'k003'
        if ($run.Path) { ((Get-Content -Raw (Join-Path (Get-RunFolder $run) run.json) | ConvertFrom-Json).steps | Where-Object name -eq work).items_failed | Should -Be 0 } # run.json is a run folder's file
    }

    It 'is accepted by Start-Run -Resume, and only with -Resume' {
        $root = New-Root; $effects = Join-Path $TestDrive "effects-$(New-Guid)"
        $flag = Join-Path $TestDrive "fail-$(New-Guid)"; New-Item -ItemType File $flag | Out-Null
        (Invoke-FilePwsh @('-Root', $root, '-EffectsPath', $effects, '-Count', '4', '-FailOn', 'k002', '-FailFlag', $flag)).ExitCode | Should -Be 1
        $done = Invoke-FilePwsh @('-Root', $root, '-EffectsPath', $effects, '-Count', '4', '-FailOn', 'k002', '-FailFlag', $flag, '-Failed', 'Skip')
        $done.ExitCode | Should -Be 0 -Because $done.Output
        (Get-Run -Root $root).ItemsSkipped | Should -Be 1
        { Start-Run -Name x -ScriptPath $itemsScript -Root $root -Failed Skip -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidArgument*' -ExpectedMessage '*only with -Resume*'
    }
}
