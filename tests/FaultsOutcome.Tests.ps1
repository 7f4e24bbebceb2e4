# Issue 11, items 4-5, through the module: steps in doubt after a real kill inside a step, exit
# codes, configs that do not parse, runs holding another run's files, forged completions.
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force

    function New-Root { Join-Path $TestDrive ([guid]::NewGuid().ToString('N').Substring(0, 8)) }

    function New-Script([string] $Text) {
        $path = Join-Path $TestDrive "$([guid]::NewGuid().ToString('N').Substring(0, 8)).ps1"
        Set-Content -LiteralPath $path -Value $Text
        $path
    }

    # prepare, then upload (a side effect: a line in -EffectsPath; with -Hang it then waits to be
    # killed), then report, which uses upload's output.
    $script:stepsScript = New-Script @'
param($Config, [string] $EffectsPath, [switch] $Hang)
$prepared = Invoke-RunStep prepare { 'prepared' }
$uploaded = Invoke-RunStep upload {
    Add-Content -LiteralPath $EffectsPath -Value 'upload'
    if ($Hang) { Set-Content -LiteralPath "$EffectsPath.inside" -Value 'x'; Start-Sleep -Seconds 600 }
    'uploaded'
}
Invoke-RunStep report { "report of [$uploaded]" }
'@

    # Starts the run in a child pwsh, waits until the upload step's side effect happened, and
    # SIGKILLs the child inside the step.
    function New-RunKilledInsideAStep([string] $Root, [string] $Effects) {
        $child = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Command "Start-Run -Name steps -RunId steps -ScriptPath '$stepsScript' -Root '$Root' -Parameters @{ EffectsPath = '$Effects'; Hang = `$true }"
        $deadline = [DateTime]::UtcNow.AddSeconds(90)
        while (-not (Test-Path "$Effects.inside")) {
            if ($child.Process.HasExited -or [DateTime]::UtcNow -gt $deadline) {
                Stop-ChildPwsh $child
                throw "The child never reached the upload step. It printed:`n$(Get-ChildPwshOutput $child)"
            }
            Start-Sleep -Milliseconds 50
        }
        Stop-ChildPwsh $child
    }

    # The journal's CRC-32 (IEEE), to forge a line the reader accepts.
    function Get-Crc32([byte[]] $Bytes) {
        [long] $crc = 0xFFFFFFFFL
        foreach ($b in $Bytes) {
            $crc = $crc -bxor $b
            for ($i = 0; $i -lt 8; $i++) {
                $crc = if ($crc -band 1) { ($crc -shr 1) -bxor 3988292384L } else { $crc -shr 1 }
            }
        }
        ($crc -bxor 0xFFFFFFFFL).ToString('x8')
    }

    function Add-ForgedEvent([string] $RunPath, [string] $Type) {
        $journal = Join-Path $RunPath 'journal.jsonl'
        $seq = (Get-Content -LiteralPath $journal | Measure-Object).Count + 1
        $object = '{"seq":' + $seq + ',"ts":"' + [DateTime]::UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'") + '","type":"' + $Type + '"}'
        $crc = Get-Crc32 ([Text.Encoding]::UTF8.GetBytes($object))
        $line = $object.Substring(0, $object.Length - 1) + ',"crc":"' + $crc + '"}' + "`n"
        [IO.File]::AppendAllText($journal, $line)
    }
}

Describe 'A step killed while it runs is in doubt' {
    It 'is refused under -InDoubt Fail with InDoubtItems naming the step, and nothing runs' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'fail.txt'
        New-RunKilledInsideAStep $root $effects
        (Get-Run -RunId steps -Root $root).Status | Should -Be 'Interrupted'

        $result = Resume-Run -RunId steps -Root $root -InDoubt Fail -Parameters @{ EffectsPath = $effects } -Force -ErrorVariable errors -ErrorAction SilentlyContinue
        $result | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'InDoubtItems*'
        $errors[0].Exception.Message | Should -BeLike "*'upload', started in attempt 1*"
        @(Get-Content $effects).Count | Should -Be 1
        (Get-Run -RunId steps -Root $root).Status | Should -Be 'Interrupted'
    }

    It 'is reported and run again under Retry (the default), with step_resolved retry' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'retry.txt'
        New-RunKilledInsideAStep $root $effects

        $final = Resume-Run -RunId steps -Root $root -Parameters @{ EffectsPath = $effects } -Force -WarningVariable warnings -WarningAction SilentlyContinue 6>$null
        $final.Status | Should -Be 'Completed'
        ($warnings -join "`n") | Should -BeLike "*Step 'upload' is in doubt*Policy: Retry*"
        @(Get-Content $effects).Count | Should -Be 2   # the one repeat the kill allows, reported
        (Get-RunEvent -RunId steps -Root $root -Type step_resolved).Data.resolution | Should -Be 'retry'
        (Test-Run -RunId steps -Root $root).IsValid | Should -BeTrue
    }

    It 'is not run again under Skip; a later step that uses its output gets nothing' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'skip.txt'
        New-RunKilledInsideAStep $root $effects

        $final = Resume-Run -RunId steps -Root $root -InDoubt Skip -Parameters @{ EffectsPath = $effects } -Force -WarningAction SilentlyContinue 6>$null
        $final.Status | Should -Be 'Completed'
        @(Get-Content $effects).Count | Should -Be 1
        (Get-RunEvent -RunId steps -Root $root -Type step_resolved).Data.resolution | Should -Be 'skip'
        $report = Get-ChildItem (Join-Path $final.Path 'steps/report') -Filter 'output.*' | Select-Object -First 1
        Import-Clixml $report.FullName | Should -Be 'report of []'
        (Test-Run -RunId steps -Root $root).IsValid | Should -BeTrue
    }

    It 'is decided by an -InDoubt script block, which gets the step as $_' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'decide.txt'
        New-RunKilledInsideAStep $root $effects
        $seen = [Collections.Generic.List[object]]::new()

        $final = Resume-Run -RunId steps -Root $root -InDoubt { $seen.Add($_); $_.Kind -eq 'Step' -and $_.Step -eq 'upload' } -Parameters @{ EffectsPath = $effects } -Force -WarningAction SilentlyContinue 6>$null
        $final.Status | Should -Be 'Completed'
        $seen.Count | Should -Be 1
        $seen[0].Step | Should -Be 'upload'
        $seen[0].Attempt | Should -Be 1
        @(Get-Content $effects).Count | Should -Be 1   # $true: it happened, skip it
    }
}

Describe 'Exit codes of the run script' {
    It 'fails the attempt with RunScriptExited when the script exits non-zero' {
        $root = New-Root
        $script = New-Script "Invoke-RunStep a { 1 }`nexit 3`nInvoke-RunStep b { 2 }"
        $run = Start-Run -Name exits -ScriptPath $script -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue 6>$null
        $run.Status | Should -Be 'Failed'
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'RunFailed*'
        $errors[0].Exception.InnerException.ErrorId | Should -Be 'RunScriptExited'
        $errors[0].Exception.Message | Should -BeLike '*exited with code 3*'
        (Get-RunEvent -RunId $run.RunId -Root $root -Type run_failed).Data.error | Should -Be 'the run script exited with code 3'
    }

    It 'completes on exit 0 and names the steps the script never reached' {
        $root = New-Root
        $script = New-Script "Invoke-RunStep a { 1 }`nexit 0`nInvoke-RunStep b { 2 }"
        $run = Start-Run -Name exits -ScriptPath $script -Root $root -WarningVariable warnings -WarningAction SilentlyContinue 6>$null
        $run.Status | Should -Be 'Completed'
        ($warnings -join "`n") | Should -BeLike '*never reached: b*'
        (Get-RunEvent -RunId $run.RunId -Root $root -Type run_completed).Data.steps_not_met | Should -Be @('b')
    }

    It 'does not take a failing native command for an exit when the script has no exit statement' -Skip:(-not (Test-Path /bin/false)) {
        $root = New-Root
        $script = New-Script "Invoke-RunStep a { 1 }`n& /bin/false`nInvoke-RunStep b { 2 }"
        $run = Start-Run -Name native -ScriptPath $script -Root $root 6>$null
        $run.Status | Should -Be 'Completed'
        $run.StepsCompleted | Should -Be 2
    }
}

Describe 'Configs that cannot be parsed' {
    It 'refuses <Name> with InvalidConfig and creates no run' -ForEach @(
        @{ Name = 'a malformed .psd1'; File = 'bad.psd1'; Text = "@{ a = 1" }
        @{ Name = 'a .psd1 with a duplicate key'; File = 'dup.psd1'; Text = "@{ a = 1; A = 2 }" }
        @{ Name = 'a .psd1 that is not a hashtable'; File = 'list.psd1'; Text = "'just a string'" }
        @{ Name = 'a .json with a duplicate key'; File = 'dup.json'; Text = '{"a": 1, "a": 2}' }
        @{ Name = 'a .yaml with a duplicate key'; File = 'dup.yaml'; Text = "a: 1`na: 2" }
    ) {
        $root = New-Root
        $config = Join-Path $TestDrive $File
        Set-Content -LiteralPath $config -Value $Text
        $script = New-Script "Invoke-RunStep a { 1 }"
        { Start-Run -Name cfg -ScriptPath $script -Root $root -Config $config } | Should -Throw -ErrorId 'InvalidConfig*'
        @(Get-ChildItem $root -Directory -ErrorAction SilentlyContinue | Where-Object Name -notlike '.*').Count | Should -Be 0
    }

    It 'refuses a hashtable that contains itself with InvalidConfig; pwsh survives' {
        $script = New-Script "Invoke-RunStep a { 1 }"
        $root = New-Root
        $result = Invoke-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -TimeoutSec 120 -Command @"
`$config = @{ a = 1 }; `$config.self = `$config
try { Start-Run -Name loop -ScriptPath '$script' -Root '$root' -Config `$config } catch { 'ERRORID ' + `$_.FullyQualifiedErrorId; `$_.Exception.Message }
"@
        $result.ExitCode | Should -Be 0
        $result.Output | Should -BeLike '*ERRORID InvalidConfig*'
        $result.Output | Should -BeLike '*contains itself*'
    }
}

Describe 'A run directory holding another run''s files' {
    BeforeAll {
        $script:root = New-Root
        $script = New-Script "Invoke-RunStep a { 1 }`nInvoke-RunStep b { 2 }"
        $null = Start-Run -Name one -RunId r1 -ScriptPath $script -Root $root 6>$null
        $null = Start-Run -Name three -RunId r3 -ScriptPath $script -Root $root 6>$null
        Copy-Item (Join-Path $root 'r1') (Join-Path $root 'r2') -Recurse
    }

    It 'is listed by Get-Run as an error, and the other runs still are listed' {
        $runs = Get-Run -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue
        $runs.RunId | Should -Be @('r1', 'r3')
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'RunDamaged*'
        $errors[0].Exception.Message | Should -BeLike "*holds the files of run 'r1'*"
    }

    It 'is refused by Resume-Run with RunDamaged' {
        Resume-Run -RunId r2 -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue 6>$null | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'RunDamaged*'
        (Get-RunEvent -RunId r1 -Root $root | Measure-Object).Count | Should -Be (Get-RunEvent -RunId r3 -Root $root | Measure-Object).Count
    }

    It 'is reported by Test-Run with RunIdMismatch rows' {
        $result = Test-Run -RunId r2 -Root $root
        $result.IsValid | Should -BeFalse
        ($result.Problems | Where-Object Kind -eq RunIdMismatch).Path | Should -Be @('run.json#/run_id', 'journal.jsonl#run_created/run_id')
    }
}

Describe 'Test-Run on a forged completion' {
    It 'says invalid when run_completed was written over a step that never completed' {
        $root = New-Root
        $script = New-Script "Invoke-RunStep a { 1 }`nInvoke-RunStep b { 2 }"
        $run = Start-Run -Name forged -ScriptPath $script -Root $root -Step a 6>$null
        $run.Status | Should -Be 'Stopped'
        Add-ForgedEvent $run.Path 'run_completed'
        (Get-Run -RunId $run.RunId -Root $root).Status | Should -Be 'Completed'

        $result = Test-Run -RunId $run.RunId -Root $root
        $result.IsValid | Should -BeFalse
        $row = $result.Problems | Where-Object Kind -eq IncompleteRun
        $row.Step | Should -Be 'b'
        $row.Expected | Should -Be 'completed'
    }
}

# Issue 12 (errors inside steps): run scripts run under $ErrorActionPreference = 'Stop' unless they
# say otherwise, and a failure keeps its real ErrorId and the failing line.
Describe 'Errors inside steps and items' {
    It 'fails the step and the run on a non-terminating error, with its ErrorId and line, and leaves the caller''s preference alone' {
        $root = New-Root
        $script = New-Script "Invoke-RunStep prepare { 'ok' }`nInvoke-RunStep copy {`n    Copy-Item -LiteralPath '/nonexistent/runtools-x' -Destination '$TestDrive/x'`n    'copied'`n}`nInvoke-RunStep after { 'never' }"
        $ErrorActionPreference = 'Continue'
        $run = Start-Run -Name copy -ScriptPath $script -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue 6>$null
        $ErrorActionPreference | Should -Be 'Continue'
        $run.Status | Should -Be 'Failed'
        $run.StepsCompleted | Should -Be 1
        $stepFailed = (Get-RunEvent -RunId $run.RunId -Root $root -Type step_failed).Data.error
        $stepFailed | Should -BeLike "step 'copy' failed: Cannot find path*(ErrorId: PathNotFound,Microsoft.PowerShell.Commands.CopyItemCommand; at ${script}:3)"
        $errors[0].FullyQualifiedErrorId | Should -Be 'RunFailed,RunTools.StartRunCommand'
        $errors[0].Exception.Message | Should -BeLike "*at ${script}:3). Fix the cause*"
        $inner = $errors[0].Exception.InnerException
        $inner.ErrorRecord.FullyQualifiedErrorId | Should -Be 'PathNotFound,Microsoft.PowerShell.Commands.CopyItemCommand'
        $inner.ErrorRecord.InvocationInfo.ScriptLineNumber | Should -Be 3
        $inner.InnerException | Should -BeOfType [System.Management.Automation.ItemNotFoundException]
    }

    It 'fails the run on <Case>, with the failing line and the inner ErrorId' -ForEach @(
        @{ Case = 'Write-Error'; Body = "Invoke-RunStep s {`n    Write-Error 'soft'`n}"; Id = $null; Line = 2 }
        @{ Case = 'Add-RunArtifact of a missing file'; Body = "Invoke-RunStep s {`n    Add-RunArtifact -Path ./absent.bin`n}"; Id = 'ArtifactNotFound'; Line = 2 }
        @{ Case = 'a parameter binding error'; Body = "Invoke-RunStep '' { 1 }"; Id = 'ParameterArgumentValidationError'; Line = 1 }
    ) {
        $root = New-Root
        $script = New-Script $Body
        $run = Start-Run -Name e -ScriptPath $script -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue 6>$null 2>$null
        $run.Status | Should -Be 'Failed'
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'RunFailed*'
        $inner = $errors[0].Exception.InnerException
        if ($Id) {
            $found = $null
            for ($e = $inner; $e; $e = $e.InnerException) { if ($e.PSObject.Properties['ErrorId']) { $found = $e.ErrorId; break } }
            $found | Should -Be $Id
        }
        $run.Error | Should -BeLike "*at ${script}:$Line)"
        (Get-RunEvent -RunId $run.RunId -Root $root -Type run_failed).Data.error | Should -Be $run.Error
    }

    It 'keeps errors non-terminating where the script says so: <Case>' -ForEach @(
        @{ Case = 'the script sets its preference'; Body = "`$ErrorActionPreference = 'Continue'`nInvoke-RunStep s { Write-Error 'soft'; 'went on' }" }
        @{ Case = '-ErrorAction Continue on the command'; Body = "Invoke-RunStep s { Write-Error 'soft' -ErrorAction Continue; 'went on' }" }
        @{ Case = 'the step sets its preference'; Body = "Invoke-RunStep s { `$ErrorActionPreference = 'SilentlyContinue'; Write-Error 'soft'; 'went on' }" }
    ) {
        $root = New-Root
        $script = New-Script $Body
        $run = Start-Run -Name e -ScriptPath $script -Root $root 6>$null 2>$null
        $run.Status | Should -Be 'Completed'
        Get-ChildItem (Join-Path $run.Path 'steps/s') -Filter 'output.*' | Import-Clixml | Should -Be 'went on'
    }

    It 'records a failed item with its ErrorId and line; -ErrorAction Continue on Invoke-RunItem lets the other items run' {
        $root = New-Root
        $effects = Join-Path $TestDrive 'items.txt'
        $script = New-Script "param([string] `$Effects)`nInvoke-RunStep work {`n    'a', 'b', 'c' | Invoke-RunItem -Key { `$_ } -ErrorAction Continue {`n        if (`$_ -eq 'b') { Get-Item -LiteralPath '/nonexistent/runtools-b' }`n        Add-Content -LiteralPath `$Effects -Value `$_`n    }`n}"
        $run = Start-Run -Name items -ScriptPath $script -Root $root -Parameters @{ Effects = $effects } -ErrorAction SilentlyContinue 6>$null 2>$null
        $run.Status | Should -Be 'Failed'
        Get-Content $effects | Should -Be @('a', 'c')
        $failed = Get-RunEvent -RunId $run.RunId -Root $root -Type item_failed
        $failed.Data.key | Should -Be 'b'
        $failed.Data.error | Should -BeLike "Cannot find path*(ErrorId: PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand; at ${script}:4)"
        $run.Error | Should -BeLike "*1 item(s) failed: b. Resume the run to retry them."
    }

    It 'names only the failed item''s own ErrorId and line when that item ends its step, in the messages and the step_failed event: <Case>' -ForEach @(
        @{ Case = 'the step of Invoke-RunItem -Step'; Open = '1..3 | Invoke-RunItem -Step up'; Close = '' }
        @{ Case = 'an Invoke-RunStep around the items'; Open = 'Invoke-RunStep up { $null = 1..3 | Invoke-RunItem'; Close = ' }' }
    ) {
        $root = New-Root
        $script = New-Script "$Open -Key { `"k`$_`" } {`n    if (`$_ -eq 2) { Get-Item -LiteralPath '/nonexistent/runtools-k2' }`n    `$_`n}$Close"
        $run = Start-Run -Name items -ScriptPath $script -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue 6>$null 2>$null
        $run.Status | Should -Be 'Failed'
        $cause = "*(ErrorId: PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand; at ${script}:2)*"
        foreach ($text in $run.Error, $errors[0].Exception.Message) {
            $text | Should -BeLike $cause
            $text | Should -Not -BeLike '*ItemFailed*'
        }
        $errors[0].Exception.InnerException.ErrorRecord.FullyQualifiedErrorId | Should -Be 'PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand'
        $stepFailed = Get-RunEvent -RunId $run.RunId -Root $root -Type step_failed
        $stepFailed.Data.error_id | Should -Be 'PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand'
        (Get-RunEvent -RunId $run.RunId -Root $root -Type item_failed).Data.error_id | Should -Be 'PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand'
    }

    It 'names UnitTimedOut, not ItemFailed, when an item past its -TimeoutSec ends its step' {
        $root = New-Root
        $script = New-Script "Invoke-RunStep up {`n    1 | Invoke-RunItem -Key { `"k`$_`" } -TimeoutSec 1 { Start-Sleep -Seconds 10 }`n}"
        $run = Start-Run -Name timed -ScriptPath $script -Root $root -ErrorAction SilentlyContinue 6>$null 2>$null
        $run.Status | Should -Be 'Failed'
        $run.Error | Should -BeLike "*(ErrorId: UnitTimedOut; at ${script}:2)"
        $run.Error | Should -Not -BeLike '*ItemFailed*'
        (Get-RunEvent -RunId $run.RunId -Root $root -Type step_failed).Data.error_id | Should -Be 'UnitTimedOut'
    }
}

# Issue 11 item 7: a write that fails is WriteFailed (path, cause, next step), never FileUnreadable.
Describe 'Write failures on a read-only target' {
    BeforeAll {
        function Get-MountProblem {
            if (-not $IsLinux) { return 'mounting a test file system needs Linux' }
            if ((& id -u) -ne '0') { return "mounting a test file system needs root (running as $(& id -un))" }
            $probe = Join-Path ([IO.Path]::GetTempPath()) ("runtools-probe-" + [guid]::NewGuid().ToString('N'))
            $null = New-Item -ItemType Directory $probe
            try {
                $output = & mount -t tmpfs -o size=64k tmpfs $probe 2>&1
                if ($LASTEXITCODE -ne 0) { return "mount is not permitted here: $output" }
                & umount $probe
                return $null
            }
            finally { Remove-Item -LiteralPath $probe -Force }
        }
        $script:mountProblem = Get-MountProblem
        $script:sourceRoot = New-Root
        $script:okScript = New-Script "Invoke-RunStep a { 1 }"
        $script:done = Start-Run -Name done -ScriptPath $okScript -Root $sourceRoot 6>$null
        $script:archive = Export-RunArchive -RunId $done.RunId -Root $sourceRoot -DestinationPath (Join-Path $TestDrive 'archives')

        # A folder made read-only by a read-only bind mount of itself (root ignores permission bits).
        function Set-ReadOnly([string] $Path) {
            & mount --bind $Path $Path
            if ($LASTEXITCODE -ne 0) { throw "mount --bind $Path failed" }
            & mount -o remount,bind,ro $Path
            if ($LASTEXITCODE -ne 0) { & umount $Path; throw "remount ro $Path failed" }
        }
    }

    BeforeEach {
        $readOnly = $null
        if ($script:mountProblem) { return }
        $readOnly = Join-Path ([IO.Path]::GetTempPath()) ("runtools-ro-" + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $readOnly
        Copy-Item -Recurse (Join-Path $PSScriptRoot 'fixtures/generic/nightly') (Join-Path $readOnly 'nightly')
        Set-ReadOnly $readOnly
    }

    AfterEach {
        if ($readOnly) {
            & umount $readOnly 2>$null
            & mountpoint -q $readOnly
            if ($LASTEXITCODE -eq 0) { & umount -l $readOnly }
            Remove-Item -LiteralPath $readOnly -Recurse -Force -ErrorAction SilentlyContinue
        }
    }

    It '<Cmdlet> into a read-only folder is WriteFailed naming the folder and what to do' -ForEach @(
        @{ Cmdlet = 'Export-RunArchive'; Call = { Export-RunArchive -RunId $done.RunId -Root $sourceRoot -DestinationPath (Join-Path $readOnly 'sub') -ErrorVariable e -ErrorAction SilentlyContinue; $e } }
        @{ Cmdlet = 'Import-RunArchive'; Call = { Import-RunArchive -LiteralPath $archive.FullName -Root (Join-Path $readOnly 'runs') -Confirm:$false -ErrorVariable e -ErrorAction SilentlyContinue; $e } }
        @{ Cmdlet = 'ConvertTo-Run'; Call = { ConvertTo-Run -Path (Join-Path $readOnly 'nightly') -ScriptPath (Join-Path $PSScriptRoot 'fixtures/generic/nightly.ps1') -Confirm:$false -WarningAction SilentlyContinue -ErrorVariable e -ErrorAction SilentlyContinue; $e } }
    ) {
        if ($script:mountProblem) { Set-ItResult -Skipped -Because $script:mountProblem; return }
        $errors = @(& $Call)
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be "WriteFailed,RunTools.$($Cmdlet -replace '-', '')Command"
        $errors[0].CategoryInfo.Category | Should -Be 'WriteError'
        $errors[0].Exception.Message | Should -BeLike "*$readOnly*"
        $errors[0].Exception.Message | Should -BeLike '*Read-only file system*'
        $errors[0].Exception.Message | Should -BeLike '*Free disk space*read-write*permissions*'
        @(Get-ChildItem -LiteralPath $readOnly -Force).Name | Should -Be @('nightly')
    }
}
