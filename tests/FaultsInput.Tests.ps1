# Issue 11, items 6-8 (part D): hostile input through the real module. Anything that could hang
# (a FIFO, an endless step) runs in a child pwsh under a timeout, so a regression fails the test
# instead of hanging the suite.
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force

    function New-Root { Join-Path $TestDrive ([guid]::NewGuid().ToString('N').Substring(0, 8)) }

    function New-Script([string] $Text) {
        $path = Join-Path $TestDrive ([guid]::NewGuid().ToString('N').Substring(0, 8) + '.ps1')
        Set-Content -LiteralPath $path -Value $Text
        $path
    }

    function New-Fifo([string] $Path) {
        & mkfifo $Path
        $LASTEXITCODE | Should -Be 0
        $Path
    }

    function Quote([string] $Text) { "'" + ($Text -replace "'", "''") + "'" }

    # Runs a command in a child pwsh; prints 'ID=<FullyQualifiedErrorId>' for the error it throws.
    function Invoke-Bounded([string] $Command, [int] $TimeoutSec = 60) {
        $wrapped = "try { $Command; 'NOERROR' } catch { 'ID=' + `$_.FullyQualifiedErrorId; 'MSG=' + `$_.Exception.Message }"
        Invoke-ChildPwsh -Command $wrapped -ModulePath $env:RUNTOOLS_MODULE_PATH -TimeoutSec $TimeoutSec
    }
}

Describe 'Files that are not regular files' {
    It 'refuses a FIFO as -Config at once instead of blocking' -Skip:$IsWindows {
        $fifo = New-Fifo (Join-Path $TestDrive 'config.json')
        $script = New-Script "param(`$Config) Invoke-RunStep a { 1 }"
        $result = Invoke-Bounded "Start-Run -Name f -ScriptPath $(Quote $script) -Config $(Quote $fifo) -Root $(Quote (New-Root))"
        $result.Output | Should -Match 'ID=NotRegularFile,RunTools.StartRunCommand'
        $result.Output | Should -Match 'FIFO'
    }

    It 'refuses a FIFO or a directory as -ScriptPath' -Skip:$IsWindows {
        $fifo = New-Fifo (Join-Path $TestDrive 'script.ps1')
        (Invoke-Bounded "Start-Run -Name f -ScriptPath $(Quote $fifo) -Root $(Quote (New-Root))").Output | Should -Match 'ID=NotRegularFile,'
        { Start-Run -Name f -ScriptPath $TestDrive -Root (New-Root) } | Should -Throw -ErrorId 'NotRegularFile,RunTools.StartRunCommand'
    }

    It 'refuses a FIFO given to Add-RunArtifact, and the run goes on' -Skip:$IsWindows {
        $fifo = New-Fifo (Join-Path $TestDrive 'artifact.fifo')
        $script = New-Script @"
param(`$Config)
Invoke-RunStep a { try { Add-RunArtifact -Path $(Quote $fifo) } catch { 'CAUGHT=' + `$_.FullyQualifiedErrorId } }
"@
        $result = Invoke-Bounded "Start-Run -Name f -ScriptPath $(Quote $script) -Root $(Quote (New-Root)) | ForEach-Object { 'STATUS=' + `$_.Status }"
        $result.Output | Should -Match 'CAUGHT=NotRegularFile,RunTools.AddRunArtifactCommand'
        $result.Output | Should -Match 'STATUS=Completed'
    }

    It 'fails a step whose declared -OutputFile is a FIFO or a directory, naming it' -Skip:$IsWindows {
        $script = New-Script @'
param($Config)
Invoke-RunStep a -OutputFile out.fifo { & mkfifo (Join-Path (Get-RunContext).Path 'out.fifo') }
'@
        $root = New-Root
        $result = Invoke-Bounded "Start-Run -Name f -ScriptPath $(Quote $script) -Root $(Quote $root) -ErrorVariable e -ErrorAction SilentlyContinue | ForEach-Object { 'STATUS=' + `$_.Status }; 'INNER=' + `$e[0].Exception.InnerException.ErrorId"
        $result.Output | Should -Match 'STATUS=Failed'
        $result.Output | Should -Match 'INNER=NotRegularFile'
    }

    It 'Test-Run reports a run whose journal is a directory and goes on with the next run' {
        $root = New-Root
        $script = New-Script "param(`$Config) Invoke-RunStep a { 1 }"
        $broken = Start-Run -Name one -ScriptPath $script -Root $root 6>$null
        $fine = Start-Run -Name two -ScriptPath $script -Root $root 6>$null
        Remove-Item -LiteralPath (Join-Path $broken.Path 'journal.jsonl')
        $null = New-Item -ItemType Directory -Path (Join-Path $broken.Path 'journal.jsonl')

        $results = @(Test-Run -RunId $broken.RunId, $fine.RunId -Root $root -ErrorVariable errors)
        $results.Count | Should -Be 2
        $errors.Count | Should -Be 0
        $results[0].IsValid | Should -BeFalse
        $results[0].Problems[0].Kind | Should -Be 'Unreadable'
        $results[0].Problems[0].Path | Should -Be 'journal.jsonl'
        $results[1].IsValid | Should -BeTrue
    }
}

Describe 'Malformed wildcards' {
    BeforeAll {
        $script:root = New-Root
        $script = New-Script "param(`$Config) Invoke-RunStep a { 1 }"
        $script:run = Start-Run -Name w -ScriptPath $script -Root $root 6>$null
    }

    It '<Command> is an InvalidWildcardPattern argument error that says how to escape' -ForEach @(
        @{ Command = "Get-Run -Name '['"; Id = 'InvalidWildcardPattern,RunTools.GetRunCommand' }
        @{ Command = "Get-Run -RunId '[a'"; Id = 'InvalidWildcardPattern,RunTools.GetRunCommand' }
        @{ Command = "Stop-Run -Name '['"; Id = 'InvalidWildcardPattern,RunTools.StopRunCommand' }
        @{ Command = "Test-Run -Name '[x'"; Id = 'InvalidWildcardPattern,RunTools.TestRunCommand' }
        @{ Command = "Export-RunArchive -Name '[' -DestinationPath `$TestDrive"; Id = 'InvalidWildcardPattern,RunTools.ExportRunArchiveCommand' }
        @{ Command = "Get-RunEvent -RunId `$run.RunId -Type '['"; Id = 'InvalidWildcardPattern,RunTools.GetRunEventCommand' }
    ) {
        $failure = $null
        try {
            Invoke-Expression "$Command -Root `$root -ErrorAction Stop"
        } catch {
            $failure = $_
        }
        $failure | Should -Not -BeNullOrEmpty
        $failure.FullyQualifiedErrorId | Should -Be $Id
        $failure.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $failure.Exception.Message | Should -Match ([regex]::Escape("'[[]'"))
    }

    It 'tab completion of a half-typed bracket completes literally instead of failing' {
        $bracketRoot = New-Root
        $null = Start-Run -Name 'a[b' -ScriptPath (New-Script "param(`$Config) Invoke-RunStep a { 1 }") -Root $bracketRoot 6>$null
        $line = "Stop-Run -Root '$bracketRoot' -Name a["
        (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches.ListItemText | Should -Be 'a[b'
    }

    It 'completes a name with wildcard characters escaped, so that the completed text selects that run and no other' {
        $wildRoot = New-Root
        $script = New-Script "Invoke-RunStep a { 1 }"
        foreach ($name in 'ab', 'a`b', 'x[1]') { $null = Start-Run -Name $name -ScriptPath $script -Root $wildRoot 6>$null }
        foreach ($typed in 'a', 'x') {
            $line = "Get-Run -Root '$wildRoot' -Name $typed"
            foreach ($match in (TabExpansion2 -inputScript $line -cursorColumn $line.Length).CompletionMatches) {
                $selected = @(Invoke-Expression "Get-Run -Root '$wildRoot' -Name $($match.CompletionText)")
                $selected.Name | Should -Be $match.ListItemText -Because "'$($match.CompletionText)' was offered for the run named '$($match.ListItemText)'"
            }
        }
    }

    It 'an escaped bracket matches literally' {
        @(Get-Run -Name '[[]' -Root $root).Count | Should -Be 0
        @(Get-Run -Name '[w]' -Root $root).Count | Should -Be 1
    }
}

Describe 'A runs root that is a file' {
    BeforeAll {
        $script:fileRoot = Join-Path $TestDrive 'root-file'
        Set-Content -LiteralPath $fileRoot -Value 'x'
        $script:script = New-Script "param(`$Config) Invoke-RunStep a { 1 }"
    }

    It 'Start-Run says RootNotDirectory, not "already exists"' {
        $failure = $null
        try { Start-Run -Name r -ScriptPath $script -Root $fileRoot } catch { $failure = $_ }
        $failure.FullyQualifiedErrorId | Should -Be 'RootNotDirectory,RunTools.StartRunCommand'
        $failure.Exception.Message | Should -Match 'not a directory'
        $failure.Exception.Message | Should -Not -Match 'already exists'
    }

    It 'Get-Run writes RootNotDirectory and still lists the other roots' {
        $good = New-Root
        $null = Start-Run -Name r -ScriptPath $script -Root $good 6>$null
        $runs = @(Get-Run -Root $fileRoot, $good -ErrorVariable errors -ErrorAction SilentlyContinue)
        $runs.Count | Should -Be 1
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'RootNotDirectory,RunTools.GetRunCommand'
    }
}

Describe 'A damaged run directory' {
    It 'a steps/ that becomes a file fails the run with RunDamaged naming it, not "Steps do not nest"' {
        $script = New-Script @'
param($Config)
Invoke-RunStep a {
    $steps = Join-Path (Get-RunContext).Path 'steps'
    Remove-Item -LiteralPath $steps -Recurse -Force
    Set-Content -LiteralPath $steps -Value 'x'
    1
}
Invoke-RunStep b { 2 }
'@
        $info = Start-Run -Name d -ScriptPath $script -Root (New-Root) -ErrorVariable errors -ErrorAction SilentlyContinue 6>$null
        $info.Status | Should -Be 'Failed'
        $errors[0].FullyQualifiedErrorId | Should -Be 'RunFailed,RunTools.StartRunCommand'
        $errors[0].Exception.InnerException.ErrorId | Should -Be 'RunDamaged'
        $errors[0].Exception.Message | Should -Match ([regex]::Escape((Join-Path $info.Path 'steps')))
        $errors[0].Exception.Message | Should -Not -Match 'do not nest'
    }

    It 'Get-RunEvent on a run whose journal is <Case> is JournalUnreadable, and the next run is still listed' -ForEach @(
        @{ Case = 'missing' }
        @{ Case = 'empty' }
    ) {
        $root = New-Root
        $script = New-Script "Invoke-RunStep a { 1 }"
        $damaged = Start-Run -Name d -RunId damaged -ScriptPath $script -Root $root 6>$null
        $null = Start-Run -Name d -RunId whole -ScriptPath $script -Root $root 6>$null
        $journal = Join-Path $damaged.Path 'journal.jsonl'
        if ($Case -eq 'missing') { Remove-Item -LiteralPath $journal } else { Set-Content -LiteralPath $journal -Value $null -NoNewline }
        $events = Get-RunEvent -RunId damaged, whole -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'JournalUnreadable,RunTools.GetRunEventCommand'
        $errors[0].TargetObject | Should -Be 'damaged'
        $errors[0].Exception.Message | Should -BeLike "*has no readable journal event*Test-Run*"
        @($events).Count | Should -BeGreaterThan 0
        $events.RunId | Select-Object -Unique | Should -Be 'whole'
    }

    It 'Resume-Run of a run whose script is gone with its recorded copy says so, and names no file that does not exist' {
        $root = New-Root
        $script = New-Script "Invoke-RunStep a { 1 }`nInvoke-RunStep b { 2 }"
        $run = Start-Run -Name d -RunId gone -ScriptPath $script -Root $root -Step a 6>$null
        Remove-Item -LiteralPath $script, (Join-Path $run.Path 'script.ps1')
        Resume-Run -RunId gone -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors[0].FullyQualifiedErrorId | Should -Be 'ScriptNotFound,RunTools.ResumeRunCommand'
        $errors[0].Exception.Message | Should -BeLike '*Pass -ScriptPath with the run''s script; its recorded copy*is missing too*'
        $errors[0].Exception.Message | Should -Not -BeLike '*its recorded copy is *'
    }

    It 'a damaged parameters.json is named by Test-Run and by the resume, and -Parameters mends it' {
        $root = New-Root
        $script = New-Script "param(`$N = 1)`nInvoke-RunStep a { `$N }`nInvoke-RunStep b { 2 }"
        $run = Start-Run -Name d -RunId params -ScriptPath $script -Root $root -Parameters @{ N = 2 } -Step a 6>$null
        $file = Join-Path $run.Path 'parameters.json'
        Set-Content -LiteralPath $file -Value '{broken'
        $test = Test-Run -RunId params -Root $root
        $test.IsValid | Should -BeFalse
        $test.Problems.Path | Should -Contain 'parameters.json'
        Resume-Run -RunId params -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue 6>$null
        $errors[0].FullyQualifiedErrorId | Should -Be 'InvalidParameters,RunTools.ResumeRunCommand'
        $errors[0].Exception.Message | Should -BeLike '*parameters.json is damaged*-Parameters*'
        $final = Resume-Run -RunId params -Root $root -Parameters @{ N = 2 } 6>$null
        $final.Status | Should -Be 'Completed'
        (Test-Run -RunId params -Root $root).IsValid | Should -BeTrue
    }

    It 'Remove-Run -Path of a link to a run refuses with InvalidArgument and deletes neither the link nor the run' {
        $root = New-Root
        $run = Start-Run -Name d -RunId linked -ScriptPath (New-Script "Invoke-RunStep a { 1 }") -Root $root 6>$null
        $link = Join-Path $TestDrive "link-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        $null = New-Item -ItemType SymbolicLink -Path $link -Target $run.Path
        Remove-Run -Path $link -Confirm:$false -ErrorVariable errors -ErrorAction SilentlyContinue
        $errors.Count | Should -Be 1
        $errors[0].FullyQualifiedErrorId | Should -Be 'InvalidArgument,RunTools.RemoveRunCommand'
        Test-Path -LiteralPath $link | Should -BeTrue
        (Get-Run -RunId linked -Root $root).Status | Should -Be 'Completed'
    }
}

Describe 'Resource limits' {
    It 'refuses a config above 16 MiB with ConfigTooLarge before reading it' {
        $config = Join-Path $TestDrive 'large.yaml'
        $stream = [IO.File]::Create($config)
        try { $stream.SetLength(16MB + 1) } finally { $stream.Dispose() }
        $script = New-Script "param(`$Config) Invoke-RunStep a { 1 }"
        { Start-Run -Name c -ScriptPath $script -Config $config -Root (New-Root) } | Should -Throw -ErrorId 'ConfigTooLarge,RunTools.StartRunCommand'
    }

    It 'Import-RunArchive refuses an archive above -MaximumSize or -MaximumEntryCount and imports it by default' {
        $root = New-Root
        $script = New-Script "param(`$Config) Invoke-RunStep a { 'x' * 1000 }"
        $run = Start-Run -Name a -ScriptPath $script -Root $root 6>$null
        $zip = Export-RunArchive -RunId $run.RunId -Root $root -DestinationPath (Join-Path $TestDrive 'zips')
        $target = New-Root

        Import-RunArchive -LiteralPath $zip.FullName -Root $target -MaximumSize 100 -ErrorVariable e1 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e1[0].FullyQualifiedErrorId | Should -Be 'ArchiveTooLarge,RunTools.ImportRunArchiveCommand'
        Import-RunArchive -LiteralPath $zip.FullName -Root $target -MaximumEntryCount 2 -ErrorVariable e2 -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $e2[0].FullyQualifiedErrorId | Should -Be 'ArchiveTooManyEntries,RunTools.ImportRunArchiveCommand'
        @(Get-ChildItem -LiteralPath $target -Force -ErrorAction SilentlyContinue).Count | Should -Be 0

        (Import-RunArchive -LiteralPath $zip.FullName -Root $target).RunId | Should -Be $run.RunId
    }

    It 'a step that writes 200 MB of output keeps the peak working set bounded' {
        # Measured: 149 MB peak with streaming; 1,556 MB when the output was collected in memory.
        $script = New-Script @'
param($Config)
Invoke-RunStep big { $s = 'x' * 1000; foreach ($i in 1..200000) { $s } } | Out-Null
'@
        $root = New-Root
        $result = Invoke-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -TimeoutSec 300 -Command @"
`$r = Start-Run -Name big -ScriptPath $(Quote $script) -Root $(Quote $root)
'STATUS=' + `$r.Status
'PEAK=' + [Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64
"@
        $result.Output | Should -Match 'STATUS=Completed'
        $peak = [long](($result.Output -split "`n" | Where-Object { $_ -like 'PEAK=*' }) -replace 'PEAK=', '')
        $peak | Should -BeLessThan 450MB
        $recorded = Get-ChildItem -Path (Join-Path $root '*/steps/big/output.clixml')
        $recorded.Length | Should -BeGreaterThan 200000000   # 200,000 strings of 1,000 characters: nothing dropped
        (Test-Run -Path $recorded.Directory.Parent.Parent.FullName).IsValid | Should -BeTrue
    }

    It 'the attempt log stops taking script output at 64 MiB' {
        $script = New-Script @'
param($Config)
$s = 'y' * 1000; foreach ($i in 1..80000) { $s }
Invoke-RunStep after { 'done' }
'@
        $root = New-Root
        $result = Invoke-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -TimeoutSec 300 -Command "`$r = Start-Run -Name log -ScriptPath $(Quote $script) -Root $(Quote $root) | Select-Object -Last 1; 'STATUS=' + `$r.Status"
        $result.Output | Should -Match 'STATUS=Completed'
        $log = Get-Item -Path (Join-Path $root '*/logs/attempt-1.log')
        $log.Length | Should -BeLessThan (64MB + 1MB)
        $log.Length | Should -BeGreaterThan 60MB
        @(Select-String -LiteralPath $log.FullName -Pattern 'passed 64 MiB' -SimpleMatch).Count | Should -Be 1
        (Get-Content -LiteralPath $log.FullName -Tail 3) -join "`n" | Should -Match "Step 'after' completed"
    }
}

Describe 'Stop-Run reaches a running step' {
    It 'stops a step that never reaches a boundary, from another process' {
        $root = New-Root
        $script = New-Script @'
param($Config)
Invoke-RunStep first { 'ok' }
Invoke-RunStep forever { while ($true) { Start-Sleep -Milliseconds 50 } }
Invoke-RunStep never { 'no' }
'@
        $child = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Command "`$r = Start-Run -Name loop -ScriptPath $(Quote $script) -Root $(Quote $root); 'STATUS=' + `$r.Status"
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            do {
                Start-Sleep -Milliseconds 200
                $run = Get-Run -Name loop -Root $root -ErrorAction SilentlyContinue
                if ($child.Process.HasExited) { throw "The child exited early: $(Get-ChildPwshOutput $child)" }
            } until (($run -and $run.CurrentStep -eq 'forever') -or [DateTime]::UtcNow -gt $deadline)
            $run.CurrentStep | Should -Be 'forever'

            $stopped = [Diagnostics.Stopwatch]::StartNew()
            Stop-Run -Name loop -Root $root -Reason 'test'
            Wait-ChildPwsh $child -TimeoutSec 60 | Should -Be 0
            $stopped.Elapsed.TotalSeconds | Should -BeLessThan 30
        } finally {
            if (-not $child.Process.HasExited) { Stop-ChildPwsh $child }
        }

        Get-ChildPwshOutput $child | Should -Match 'STATUS=Stopped'
        $events = @(Get-RunEvent -RunId $run.RunId -Root $root)
        $last = $events[-1]
        $last.Type | Should -Be 'run_stopped'
        $last.Step | Should -Be 'forever'
        $events.Where({ $_.Type -eq 'step_started' -and $_.Step -eq 'never' }).Count | Should -Be 0
        (Get-Run -RunId $run.RunId -Root $root).Status | Should -Be 'Stopped'
    }
}
