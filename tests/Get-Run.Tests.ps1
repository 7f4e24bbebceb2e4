BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $script:oneStep = Join-Path $TestDrive 'one-step.ps1'
    Set-Content $script:oneStep "Invoke-RunStep a { 1 }`nInvoke-RunStep b { 2 }"

    # -Complete runs both steps; otherwise only step a runs and the run ends Stopped.
    function New-TestRun([string] $Root, [string] $Id, [string] $Name = 'nightly', [switch] $Complete) {
        if ($Complete) { Start-Run -Name $Name -RunId $Id -ScriptPath $script:oneStep -Root $Root }
        else { Start-Run -Name $Name -RunId $Id -ScriptPath $script:oneStep -Root $Root -Step a }
    }
}

Describe 'Get-Run' {
    BeforeEach {
        $root = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $null = New-TestRun $root 'a1' -Name 'nightly'
        $null = New-TestRun $root 'b2' -Name 'weekly' -Complete
    }

    It 'lists every run under -Root as typed RunInfo objects' {
        $runs = Get-Run -Root $root
        $runs.RunId | Should -Be @('a1', 'b2')
        $runs[0] | Should -BeOfType ([RunTools.RunInfo])
        $runs[0].Status | Should -Be ([RunTools.RunStatus]::Stopped)
        $runs[1].Status | Should -Be 'Completed'
        $runs[0].Path | Should -Be (Join-Path $root 'a1')
    }

    It 'filters by id and name with wildcards, and by status' {
        (Get-Run 'a*' -Root $root).RunId | Should -Be 'a1'
        (Get-Run -Name 'WEEK*' -Root $root).RunId | Should -Be 'b2'
        (Get-Run -Status Completed -Root $root).RunId | Should -Be 'b2'
        (Get-Run -Root $root | Where-Object Status -eq Stopped).RunId | Should -Be 'a1'
    }

    It 'uses $env:RUNTOOLS_ROOT when -Root is not given' {
        $saved = $env:RUNTOOLS_ROOT
        try {
            $env:RUNTOOLS_ROOT = $root
            (Get-Run).Count | Should -Be 2
        } finally { $env:RUNTOOLS_ROOT = $saved }
    }

    It 'returns nothing and no error when there are no runs' {
        $empty = Join-Path $TestDrive 'empty'
        Get-Run -Root $empty -ErrorVariable errors | Should -BeNullOrEmpty
        $errors | Should -BeNullOrEmpty
    }

    It 'writes RunNotFound for a named id that does not exist, and goes on' {
        $found = Get-Run 'a1', 'missing' -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue
        $found.RunId | Should -Be 'a1'
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'RunNotFound*'
        $errors[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        { Get-Run 'missing' -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'RunNotFound*'
    }

    It 'writes InvalidRunId for an id with a path separator' {
        { Get-Run '../escape' -Root $root -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidRunId*'
    }

    It 'reports an unreadable run as RunDamaged and still lists the others' {
        $bad = New-TestRun $root 'c3'
        Set-Content -Path (Join-Path $bad.Path 'run.json') -Value 'x'
        Set-Content -Path (Join-Path $bad.Path 'journal.jsonl') -Value 'y'
        $runs = Get-Run -Root $root -ErrorVariable errors -ErrorAction SilentlyContinue
        $runs.RunId | Should -Be @('a1', 'b2')
        $errors[0].FullyQualifiedErrorId | Should -BeLike 'RunDamaged*'
        $errors[0].TargetObject | Should -Be 'c3'
    }

    It 'binds RunId and Root from the pipeline by property name' {
        $source = [pscustomobject]@{ RunId = 'b2'; Root = $root }
        ($source | Get-Run).Name | Should -Be 'weekly'
    }

    It 'declares its output type' {
        (Get-Command Get-Run).OutputType.Type | Should -Be ([RunTools.RunInfo])
    }
}

Describe 'The module' {
    It 'has a valid manifest with an explicit export list' {
        $manifest = Test-ModuleManifest (Join-Path $env:RUNTOOLS_MODULE_PATH 'RunTools.psd1')
        $manifest.Version | Should -Not -Be ([version]'0.0.0')
        $manifest.ExportedCmdlets.Keys | Should -Contain 'Get-Run'
    }

    It 'shows runs in a table with name, status, progress, failures and id' {
        $root = Join-Path $TestDrive 'table'
        $null = New-TestRun $root 'r1'
        $text = Get-Run -Root $root | Format-Table | Out-String -Width 200
        $text | Should -Match 'Name\s+Status\s+Steps\s+Items\s+Failed\s+RunId'
    }

    It 'has about_RunTools help' {
        Get-Help about_RunTools | Out-String | Should -Match 'run directory'
    }
}
