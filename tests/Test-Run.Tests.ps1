BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force

    # Two steps; the second records one artifact per item from the config's list of frames.
    # -PlanDelayMilliseconds makes the first step take longer without changing script or config.
    $script:job = Join-Path $TestDrive 'frames.ps1'
    Set-Content $script:job @'
param($Config, [int] $PlanDelayMilliseconds)
Invoke-RunStep plan { Start-Sleep -Milliseconds $PlanDelayMilliseconds; 'planned' }
$source = Join-Path ([IO.Path]::GetTempPath()) ("frame-" + [guid]::NewGuid().ToString('N'))
1..3 | Invoke-RunItem -Step frames -Key { "frame_$_" } {
    param($i)
    Set-Content -LiteralPath $source -Value "pixels $i" -NoNewline
    $null = Add-RunArtifact -Path $source -Name "frame_$i.png"
}
Remove-Item -LiteralPath $source
'@
    function New-FrameRun([string] $Root, [string] $Id, [hashtable] $Config = @{ model = 'm1' }, [int] $PlanDelayMilliseconds = 0) {
        Start-Run -Name frames -RunId $Id -ScriptPath $script:job -Root $Root -Config $Config -Parameters @{ PlanDelayMilliseconds = $PlanDelayMilliseconds } 6>$null
    }
}

Describe 'Test-Run' {
    BeforeEach {
        $root = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $run = New-FrameRun $root 'r1'
    }

    It 'passes an intact run, as a Pester ops check would use it' {
        (Test-Run -RunId r1 -Root $root).IsValid | Should -BeTrue
        $result = Test-Run -RunId r1 -Root $root
        $result | Should -BeOfType ([RunTools.RunTestResult])
        $result.Problems | Should -BeNullOrEmpty
        $result.FilesChecked | Should -Be 4   # step output + 3 frames
        $result.Status | Should -Be ([RunTools.RunStatus]::Completed)
    }

    It 'reports a corrupt artifact as a typed row naming the unit, and Resume-Run redoes only that unit' {
        $frame = Join-Path $run.Path 'artifacts/frame_2.png'
        Set-Content -LiteralPath $frame -Value 'pixelz 2' -NoNewline   # same size, other bytes
        $result = Test-Run -RunId r1 -Root $root
        $result.IsValid | Should -BeFalse
        $result.Problems | Should -HaveCount 1
        $problem = $result.Problems[0]
        $problem | Should -BeOfType ([RunTools.RunProblem])
        $problem.Kind | Should -Be ([RunTools.RunProblemKind]::HashMismatch)
        $problem.Severity | Should -Be 'Error'
        $problem.Step | Should -Be 'frames'
        $problem.Key | Should -Be 'frame_2'
        $problem.Unit | Should -Be 'frames/frame_2'
        $problem.Path | Should -Be 'artifacts/frame_2.png'
        $problem.Expected | Should -Be (Get-FileHash -InputStream ([IO.MemoryStream]::new([Text.Encoding]::UTF8.GetBytes('pixels 2')))).Hash.ToLowerInvariant()

        $resumed = Resume-Run -RunId r1 -Root $root -WarningVariable warnings 6>$null 3>$null
        $resumed.Status | Should -Be 'Completed'
        ($warnings -join "`n") | Should -BeLike "*frame_2*will run again*"
        (Get-RunEvent -RunId r1 -Root $root -Type item_started | Where-Object Attempt -eq 2).Key | Should -Be 'frame_2'
        Get-Content -LiteralPath $frame -Raw | Should -Be 'pixelz 2'   # the damaged file is kept
        $after = Test-Run -RunId r1 -Root $root
        $after.IsValid | Should -BeTrue
        ($after.Problems | Where-Object Severity -eq Warning).Path | Should -Be 'artifacts/frame_2.png'
    }

    It 'finds a missing required file, a missing artifact and an edited config copy' {
        Remove-Item (Join-Path $run.Path 'artifacts/frame_1.png')
        Set-Content (Join-Path $run.Path 'config.json') '{"model":"m2"}' -NoNewline
        Remove-Item (Join-Path $run.Path 'script.ps1')
        $problems = (Test-Run -RunId r1 -Root $root).Problems
        $problems.Path | Sort-Object | Should -Be @('artifacts/frame_1.png', 'config.json', 'script.ps1')
        ($problems | Where-Object Path -eq 'script.ps1').Kind | Should -Be 'MissingFile'
        ($problems | Where-Object Path -eq 'config.json').Kind | Should -Be 'HashMismatch'
        ($problems | Where-Object Path -eq 'artifacts/frame_1.png').Kind | Should -Be 'MissingFile'
    }

    It 'finds run.json disagreeing with the journal' {
        $state = Join-Path $run.Path 'run.json'
        $json = Get-Content $state -Raw
        $at = $json.IndexOf('"status": "completed"')   # the run's own status comes before its steps
        $json.Substring(0, $at) + '"status": "failed"' + $json.Substring($at + 21) | Set-Content $state -NoNewline
        $problems = (Test-Run -RunId r1 -Root $root).Problems
        $problems | Should -HaveCount 1
        $problem = $problems[0]
        $problem.Kind | Should -Be 'StateMismatch'
        $problem.Path | Should -Be 'run.json#/status'
        $problem.Expected | Should -Be 'Completed'
    }

    It 'takes runs from the pipeline, by name and by path; -Quiet returns booleans' {
        $null = New-FrameRun $root 'r2'
        Set-Content (Join-Path $root 'r2/artifacts/frame_3.png') 'x'
        $results = Get-Run -Root $root | Test-Run
        $results.RunId | Should -Be @('r1', 'r2')
        $results.IsValid | Should -Be @($true, $false)
        (Test-Run -Name 'fr*' -Root $root).RunId | Should -Be @('r1', 'r2')
        Test-Run -Path (Join-Path $root 'r2') -Quiet | Should -BeFalse
        Get-Run -Root $root | Test-Run -Quiet | Should -Be @($true, $false)
    }

    It 'writes RunNotFound for one missing run and goes on with the others' {
        $results = Test-Run -RunId 'missing', 'r1' -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue
        $results.RunId | Should -Be 'r1'
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'RunNotFound*'
        Test-Run -Name 'no-such-name' -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'RunNotFound*'
    }

    It 'shows a table with the validity and the first problems' {
        Set-Content (Join-Path $run.Path 'artifacts/frame_3.png') 'x'
        $text = Test-Run -RunId r1 -Root $root | Out-String -Width 200
        $text | Should -Match 'r1\s+Completed\s+False\s+1\s+0\s+4\s+SizeMismatch artifacts/frame_3.png'
    }
}

Describe 'Compare-Run' {
    BeforeAll {
        $root = Join-Path $TestDrive 'compare'
        $null = New-FrameRun $root 'a1' @{ model = 'm1'; retries = 2 }
        $null = New-FrameRun $root 'b1' @{ model = 'm2'; retries = 2; auditor = @{ strict = $true } }
    }

    It 'returns Compare-Object-like rows for every changed config key with both values' {
        $rows = Compare-Run -ReferenceRunId a1 -DifferenceRunId b1 -Root $root -Property Config
        $rows[0] | Should -BeOfType ([RunTools.RunDifference])
        $rows.Name | Should -Be @('hash', 'auditor', 'model')
        $model = $rows | Where-Object Name -eq model
        $model.ReferenceValue | Should -Be '"m1"'
        $model.DifferenceValue | Should -Be '"m2"'
        $model.SideIndicator | Should -Be '<>'
        ($rows | Where-Object Name -eq auditor).SideIndicator | Should -Be '=>'
        ($rows | Where-Object Name -eq hash).ReferenceValue | Should -Be (Get-Run a1 -Root $root).ConfigHash
    }

    It 'compares two runs from the pipeline, the first as the reference' {
        $rows = Get-Run a1, b1 -Root $root | Compare-Run -Property Config
        ($rows | Where-Object Name -eq auditor).SideIndicator | Should -Be '=>'
        $rows = (Get-Run b1 -Root $root), (Get-Run a1 -Root $root) | Compare-Run -Property Config
        ($rows | Where-Object Name -eq auditor).SideIndicator | Should -Be '<='
    }

    It 'narrows with -Property and lists equal values with -IncludeEqual' {
        Compare-Run a1 b1 -Root $root -Property Steps, Items, Artifacts, Script, FormatVersion, Status | Should -BeNullOrEmpty
        $equal = Compare-Run a1 b1 -Root $root -Property Artifacts, Steps -IncludeEqual
        $equal.Property | ForEach-Object ToString | Sort-Object -Unique | Should -Be @('Artifacts', 'Steps')
        $equal.SideIndicator | Sort-Object -Unique | Should -Be '=='
        $equal.Count | Should -Be 5   # 3 artifacts, 2 steps
    }

    It 'finds only the durations differing between two runs of the same script and config' {
        $null = New-FrameRun $root 'c1' @{ model = 'm1'; retries = 2 } -PlanDelayMilliseconds 400
        $rows = @(Compare-Run a1 c1 -Root $root)
        $rows | Where-Object Property -ne Durations | Should -BeNullOrEmpty
        $rows | ForEach-Object { $_.Name | Should -BeIn @('plan', 'frames') }   # equal durations give no row at all
        $plan = $rows | Where-Object Name -eq plan
        $plan | Should -HaveCount 1 -Because 'c1 spent 400 ms more in its plan step'
        $plan.SideIndicator | Should -Be '<>'
        $plan.DifferenceValue - $plan.ReferenceValue | Should -BeGreaterThan ([timespan]::FromMilliseconds(200))   # a1 paid the first run's warm-up
    }

    It 'needs exactly two runs from the pipeline' {
        { Get-Run a1 -Root $root | Compare-Run -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidArgument*'
    }

    It 'ends with RunNotFound when a run is missing' {
        { Compare-Run a1 missing -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'RunNotFound*'
    }
}

Describe 'Test-Run and Compare-Run on migrated runs' {
    It 'verifies a converted frame generator run and compares it with a native run of the same work' {
        $parent = Join-Path $TestDrive 'migrated'
        $null = New-Item -ItemType Directory $parent
        Copy-Item (Join-Path $PSScriptRoot 'fixtures/frame-generator/20260118_blaze_idle') $parent -Recurse
        $dir = Join-Path $parent '20260118_blaze_idle'
        $migrated = ConvertTo-Run -Path $dir -WarningAction SilentlyContinue
        $migrated.Converted | Should -BeTrue

        # Approved frames are recorded in place with their SHA-256: Test-Run checks them like artifacts.
        $result = Test-Run -Path $dir
        $result.IsValid | Should -BeTrue
        $result.FilesChecked | Should -BeGreaterThan 0
        Set-Content (Join-Path $dir 'approved/frame_0001.png') 'not a frame'
        $damaged = Test-Run -Path $dir
        $damaged.IsValid | Should -BeFalse
        ($damaged.Problems | Where-Object Severity -eq Error).Key | Should -Be '1'

        $native = Join-Path $TestDrive 'native.ps1'
        Set-Content $native '0..3 | Invoke-RunItem -Step frames -Key { $_ } { }'
        $run = Start-Run -Name frames -ScriptPath $native -Root (Join-Path $TestDrive 'native-runs')
        $rows = Compare-Run -ReferencePath $dir -DifferencePath $run.Path -Property FormatVersion, Items
        $migrated.ItemsCompleted | Should -Be 3   # frame 3 does not decode, so it is not approved
        ($rows | Where-Object Name -eq frames).ReferenceValue | Should -Be 3
        ($rows | Where-Object Name -eq frames).DifferenceValue | Should -Be 4
        $rows | Where-Object Property -eq FormatVersion | Should -BeNullOrEmpty
    }
}
