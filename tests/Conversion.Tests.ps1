BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $script:fixtures = Join-Path $PSScriptRoot 'fixtures'

    # Fixtures are never converted themselves: each test works on a copy.
    function Copy-Fixture([string] $Relative, [string] $Parent) {
        if (-not $Parent) { $Parent = Join-Path $TestDrive ([guid]::NewGuid().ToString('N').Substring(0, 8)) }
        $null = New-Item -ItemType Directory -Force $Parent
        Copy-Item (Join-Path $script:fixtures $Relative) $Parent -Recurse
        Join-Path $Parent (Split-Path $Relative -Leaf)
    }

    function Get-Hashes([string] $Root) {
        Get-ChildItem $Root -Recurse -File | ForEach-Object {
            [pscustomobject]@{ Path = [IO.Path]::GetRelativePath($Root, $_.FullName); Hash = (Get-FileHash $_.FullName).Hash }
        }
    }

    function Assert-Untouched($Before, [string] $Root, [string[]] $AppendOnly = @()) {
        foreach ($file in $Before) {
            $path = Join-Path $Root $file.Path
            $path | Should -Exist
            if ($file.Path -notin $AppendOnly) { (Get-FileHash $path).Hash | Should -Be $file.Hash -Because "$($file.Path) is a legacy file" }
        }
    }
}

Describe 'ConvertTo-Run' {
    It 'converts a checkpoint directory: each idempotency key is a completed item, and the checkpoint disagreement is a warning' {
        $dir = Copy-Fixture 'checkpoint/run_42_10'
        $before = Get-Hashes $dir

        $run = ConvertTo-Run -Path $dir -WarningVariable warnings -WarningAction SilentlyContinue

        $run | Should -BeOfType ([RunTools.RunInfo])
        $run.RunId | Should -Be 'run_42_10'
        $run.Status | Should -Be 'Created'
        $run.Converted | Should -BeTrue
        $run.LegacyFormat | Should -Be 'checkpoint'
        $run.ItemsCompleted | Should -Be 4
        $warnings.Count | Should -Be 3
        $text = $warnings.Message -join "`n"
        $text | Should -Match 'processed_count 0, but idempotency_keys.jsonl holds 4 distinct key'
        $text | Should -Match 'Line 5 of idempotency_keys.jsonl is not a readable key record'
        Join-Path $dir 'idempotency_keys.jsonl.bak' | Should -Exist
        Assert-Untouched $before $dir

        $event = Get-RunEvent -Path $dir -Type run_migrated
        $event.Data.source_format | Should -Be 'checkpoint'
        @($event.Data.warnings).code | Should -Be @('bad_key_line', 'recovered_key_line', 'checkpoint_disagrees')
    }

    It 'converts per-trial manifests without run_state.json (-LegacyFormat forced), inferring statuses with a warning' {
        $dir = Copy-Fixture 'trial-manifests/run_exp2'
        $run = ConvertTo-Run $dir -LegacyFormat TrialManifests -Name 'experiment two' -WarningVariable warnings -WarningAction SilentlyContinue
        $run.Name | Should -Be 'experiment two'
        $run.LegacyFormat | Should -Be 'trial_manifests'
        $run.ItemsCompleted | Should -Be 2
        $warnings.Count | Should -Be 1
        $warnings[0].Message | Should -Match "No phase status for 'train' \(there is no run_state.json\)"
        (Get-Content (Join-Path $dir 'config.json') -Raw) | Should -Be '{"model":{"lr":0.02,"name":"resnet18"},"seed":7}'
    }

    It 'converts a frame generator run: a corrupt frame is backed up and not approved; the audit log gets one entry' {
        $dir = Copy-Fixture 'frame-generator/20260118_blaze_idle'
        $before = Get-Hashes $dir
        $run = ConvertTo-Run $dir -WarningVariable warnings -WarningAction SilentlyContinue
        $run.Name | Should -Be 'abc123'
        $run.ItemsCompleted | Should -Be 3
        $warnings.Count | Should -Be 1
        $warnings[0].Message | Should -Match 'approved/frame_0003.png does not decode as PNG'
        Join-Path $dir 'approved/frame_0003.png.bak' | Should -Exist
        Assert-Untouched $before $dir -AppendOnly 'audit_log.jsonl'
        $audit = Get-Content (Join-Path $dir 'audit_log.jsonl')
        $audit.Count | Should -Be 5
        ($audit[-1] | ConvertFrom-Json).event | Should -Be 'runtools_migration'
    }

    It 'does nothing with -WhatIf' {
        $dir = Copy-Fixture 'checkpoint/run_7_truncated'
        $before = @(Get-ChildItem $dir -Recurse -Force).Count
        ConvertTo-Run $dir -WhatIf -WarningAction SilentlyContinue | Should -BeNullOrEmpty
        @(Get-ChildItem $dir -Recurse -Force).Count | Should -Be $before
    }

    It 'reports what it cannot convert with stable error ids' {
        $dir = Copy-Fixture 'checkpoint/run_7_truncated'
        $null = ConvertTo-Run $dir -WarningAction SilentlyContinue
        { ConvertTo-Run $dir -ErrorAction Stop } | Should -Throw -ErrorId 'RunExists*'

        $empty = Join-Path $TestDrive 'plain'
        $null = New-Item -ItemType Directory $empty
        $err = { ConvertTo-Run $empty -ErrorAction Stop } | Should -Throw -ErrorId 'UnknownLegacyFormat*' -PassThru
        $err.Exception.Message | Should -Match '-LegacyFormat'
        $err.Exception.Message | Should -Match '-ScriptPath'

        $conflict = Copy-Fixture 'checkpoint/run_42_10'
        Set-Content (Join-Path $conflict 'script.ps1') '# the legacy tool''s own script'
        { ConvertTo-Run $conflict -ErrorAction Stop } | Should -Throw -ErrorId 'LegacyFileConflict*'
        Join-Path $conflict 'journal.jsonl' | Should -Not -Exist
    }
}

Describe 'Resume-Run -Path on a legacy directory' {
    BeforeAll {
        # The frame generator's work as a run script: frames are keyed by index; a generated frame is a copy of frame 0.
        $script:framesScript = Join-Path $TestDrive 'frames.ps1'
        Set-Content $script:framesScript @'
param($Config)
$run = Get-RunContext
0..4 | Invoke-RunItem -Step frames -Key { $_ } {
    Add-Content (Join-Path $run.Path 'generated.txt') $_
    Copy-Item (Join-Path $run.Path 'approved/frame_0000.png') (Join-Path $run.Path ('approved/frame_{0:D4}.png' -f $_)) -Force
}
'@
    }

    It 'converts first, then runs the script: converted keys are skipped, the corrupt frame is generated again' {
        $dir = Copy-Fixture 'frame-generator/20260118_blaze_idle'
        $result = Resume-Run -Path $dir -ScriptPath $script:framesScript -WarningVariable warnings -WarningAction SilentlyContinue
        $result.Status | Should -Be 'Completed'
        $result.Converted | Should -BeTrue
        $result.LegacyFormat | Should -Be 'frame_generator'
        $result.ItemsCompleted | Should -Be 5
        Get-Content (Join-Path $dir 'generated.txt') | Should -Be @('3', '4')
        $warnings.Message -join "`n" | Should -Match 'frame_0003.png does not decode'
        (Get-RunEvent -Path $dir).Type | Select-Object -First 2 | Should -Be @('run_created', 'run_migrated')
    }

    It 'needs -ScriptPath to convert, and says so' {
        $dir = Copy-Fixture 'frame-generator/20260118_blaze_idle'
        $err = { Resume-Run -Path $dir -ErrorAction Stop } | Should -Throw -ErrorId 'ScriptNotFound*' -PassThru
        $err.Exception.Message | Should -Match 'pass -ScriptPath'
        Join-Path $dir 'journal.jsonl' | Should -Not -Exist
    }

    It 'continues trial manifests with the legacy effective config: a completed phase replays, broken trials run again' {
        $dir = Copy-Fixture 'trial-manifests/run_exp1'
        $script = Join-Path $TestDrive 'trials.ps1'
        Set-Content $script @'
param($Config)
$run = Get-RunContext
Invoke-RunStep prepare { Add-Content (Join-Path $run.Path 'ran.txt') 'prepare' }
Invoke-RunStep train {
    't001', 't002', 't003' | Invoke-RunItem -Key { $_ } { Add-Content (Join-Path $run.Path 'ran.txt') "train $_ lr=$($Config.model.lr)" }
}
Invoke-RunStep evaluate { Add-Content (Join-Path $run.Path 'ran.txt') 'evaluate' }
'@
        # -Format is the old name of -LegacyFormat, kept as an alias for scripts that use it.
        $result = Resume-Run -Path $dir -ScriptPath $script -Format TrialManifests -WarningAction SilentlyContinue
        $result.Status | Should -Be 'Completed'
        Get-Content (Join-Path $dir 'ran.txt') | Should -Be @('train t002 lr=0.01', 'train t003 lr=0.01', 'evaluate')
    }
}

Describe 'Generic conversion and Invoke-RunStep -OutputFile' {
    It 'completes the steps whose declared output files exist; Resume-Run runs the others and records their output files (also through the alias -Output)' {
        $dir = Copy-Fixture 'generic/nightly'
        $script = Join-Path $script:fixtures 'generic/nightly.ps1'
        $orders = (Get-FileHash (Join-Path $dir 'data/orders.csv')).Hash

        $output = ConvertTo-Run $dir -ScriptPath $script -WarningVariable warnings -WarningAction SilentlyContinue -Verbose 4>&1
        $run = $output | Where-Object { $_ -is [RunTools.RunInfo] }
        $decisions = @($output | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] -and $_.Message -match "^Step '" } | ForEach-Object Message)
        $run.LegacyFormat | Should -Be 'generic'
        $run.StepsCompleted | Should -Be 1
        $run.StepsTotal | Should -Be 4
        $decisions | Should -HaveCount 4
        $decisions[0] | Should -Match "^Step 'extract': completed"
        $decisions[1] | Should -Match "^Step 'transform': pending.*not found: data/clean/\*\*"
        $warnings.Count | Should -Be 2

        $done = Resume-Run -Path $dir
        $done.Status | Should -Be 'Completed'
        $done.StepsCompleted | Should -Be 4
        (Get-FileHash (Join-Path $dir 'data/orders.csv')).Hash | Should -Be $orders -Because 'extract was converted as completed and is not run again'
        $state = Get-Content (Join-Path $dir 'run.json') -Raw | ConvertFrom-Json
        ($state.artifacts | Where-Object step -EQ 'transform').path | Should -Be 'data/clean/orders.txt'
        ($state.artifacts | Where-Object step -EQ 'report').path | Should -Be @('report/summary.txt', 'report/partial.txt')
    }

    It 'says that a step whose -OutputFile is a variable cannot be read, instead of saying it declares none' {
        $dir = Join-Path $TestDrive 'dynamic-outputs'
        $null = New-Item -ItemType Directory $dir
        Set-Content (Join-Path $dir 'extracted.csv') 'a,b'
        $script = Join-Path $TestDrive 'dynamic-outputs.ps1'
        Set-Content $script @'
$out = 'extracted.csv'
Invoke-RunStep extract -OutputFile $out { 'extracted' }
Invoke-RunStep plain { 'no outputs' }
'@
        $null = ConvertTo-Run $dir -ScriptPath $script -LegacyFormat Generic -WarningVariable warnings -WarningAction SilentlyContinue
        $extract = @($warnings | Where-Object { "$_" -like "Step 'extract'*" })
        $extract | Should -HaveCount 1
        "$($extract[0])" | Should -BeLike '*-OutputFile a value that is not a constant string*'
        "$($extract[0])" | Should -Not -BeLike '*declares no output files*'
        "$($warnings | Where-Object { "$_" -like "Step 'plain'*" })" | Should -BeLike '*declares no output files*'
    }

    It 'fails a step whose declared output file was not written' {
        $root = Join-Path $TestDrive 'outputs'
        $script = Join-Path $TestDrive 'missing-output.ps1'
        Set-Content $script "Invoke-RunStep write -OutputFile 'out/*.txt' { 'no file written' }"
        $result = Start-Run -Name out -ScriptPath $script -Root $root -ErrorVariable failures -ErrorAction SilentlyContinue
        $result.Status | Should -Be 'Failed'
        $result.Error | Should -Match 'out/\*\.txt'
        $result.Error | Should -Match 'declares the output file\(s\).*correct -OutputFile'
        $failures[0].FullyQualifiedErrorId | Should -BeLike 'RunFailed*'
        $failures[0].Exception.InnerException.ErrorId | Should -Be 'OutputFileNotFound'
    }
}

Describe 'Get-Run shows converted runs' {
    It 'shows Converted and LegacyFormat beside native runs (Migrated and SourceFormat still work as aliases)' {
        $root = Join-Path $TestDrive 'mixed'
        $dir = Copy-Fixture 'checkpoint/run_42_10' -Parent $root
        $null = ConvertTo-Run $dir -WarningAction SilentlyContinue
        $script = Join-Path $TestDrive 'native.ps1'
        Set-Content $script "Invoke-RunStep a { 1 }"
        $null = Start-Run -Name native -RunId 'native-1' -ScriptPath $script -Root $root

        $runs = Get-Run -Root $root
        $runs.RunId | Should -Be @('native-1', 'run_42_10')
        $runs.Converted | Should -Be @($false, $true)
        $runs.Migrated | Should -Be @($false, $true)
        $runs | ForEach-Object { [string] $_.LegacyFormat } | Should -Be @('', 'checkpoint')
        $runs[1].SourceFormat | Should -Be 'checkpoint'
        # The 80-column table has no room for the legacy format; the list view shows it.
        $table = $runs | Format-Table | Out-String -Width 200
        $table | Should -Match 'run_42_10'
        $list = $runs[1] | Format-List | Out-String -Width 200
        $list | Should -Match 'Converted\s+: True'
        $list | Should -Match 'LegacyFormat\s+: checkpoint'
    }
}

Describe 'Names from before docs/glossary.md' {
    It 'ConvertTo-Run still takes -Format, the old name of -LegacyFormat, and uses its value' {
        $dir = Copy-Fixture 'checkpoint/run_42_10'
        { ConvertTo-Run $dir -Format FrameGenerator -ErrorAction Stop } | Should -Throw -ErrorId 'UnknownLegacyFormat*'
        $run = ConvertTo-Run $dir -Format Checkpoint -WarningAction SilentlyContinue
        $run.LegacyFormat | Should -Be 'checkpoint'
    }
}
