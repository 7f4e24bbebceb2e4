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
    function New-Root { Join-Path $TestDrive ([guid]::NewGuid().ToString('N')) }
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
        (Get-Content (Join-Path $run.Path 'run.json') -Raw | ConvertFrom-Json).last_error | Should -Be $run.LastError
        # The journal alone gives the same: a reader that rebuilds the lost snapshot agrees.
        Remove-Item (Join-Path $run.Path 'run.json')
        $again = Get-Run -RunId $run.RunId -Root $root
        $again.ItemsFailed | Should -Be 1
        $again.LastError | Should -Be $run.LastError
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
