BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
}

Describe 'Dependency isolation' {
    It 'keeps its dependencies out of the module root' {
        $root = Split-Path (Join-Path $env:RUNTOOLS_MODULE_PATH 'RunTools.psd1')
        (Get-ChildItem $root -Filter *.dll).Name | Sort-Object | Should -Be @('RunTools.dll', 'RunTools.Loader.dll')
        Test-Path (Join-Path $root 'Dependencies/YamlDotNet.dll') | Should -BeTrue
        Test-Path (Join-Path $root 'Dependencies/RunTools.Core.dll') | Should -BeTrue
    }

    It 'lets the cmdlet assembly reference neither YamlDotNet nor System.Text.Json' {
        $module = Get-Module RunTools
        $references = ($module.ImplementingAssembly ?? [RunTools.RunInfo].Assembly).GetReferencedAssemblies().Name
        $references | Should -Not -Contain 'YamlDotNet'
        $references | Should -Not -Contain 'System.Text.Json'
        [RunTools.RunInfo].Assembly.GetReferencedAssemblies().Name | Should -Not -Contain 'System.Text.Json'
    }

    It 'works in a session that already loaded a different YamlDotNet' {
        # PesterTier passes the YamlDotNet 13.7.1 that tests/RunTools.Module.Tests restores; run by hand, take it from NuGet's cache.
        $other = $env:RUNTOOLS_TEST_OTHER_YAMLDOTNET
        if (-not $other) { $other = Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages/yamldotnet/13.7.1/lib/netstandard2.0/YamlDotNet.dll' }
        $other | Should -Exist -Because 'the isolation test needs another YamlDotNet build (dotnet restore tests/RunTools.Module.Tests brings 13.7.1)'
        $root = Join-Path $TestDrive 'iso'
        $config = Join-Path $TestDrive 'iso.yaml'
        Set-Content $config "stage:`n  name: isolated`n"
        $script = Join-Path $TestDrive 'iso.ps1'
        Set-Content $script 'param($Config) Invoke-RunStep s { $Config.stage.name }'
        $command = @"
Add-Type -Path '$other'
Import-Module '$env:RUNTOOLS_MODULE_PATH'
`$run = Start-Run -Name iso -ScriptPath '$script' -Config '$config' -Root '$root'
`$versions = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'YamlDotNet' } | ForEach-Object { `$_.GetName().Version.Major }
"`$(`$run.Status) `$((`$versions | Sort-Object) -join ',')"
"@
        $child = Invoke-ChildPwsh -Command $command -TimeoutSec 60
        $child.ExitCode | Should -Be 0 -Because $child.Error
        ($child.Output.Trim() -split '\r?\n')[-1] | Should -Be 'Completed 13,16'
    }
}

Describe 'Windows PowerShell 5.1 compatibility of the module''s own PowerShell' {
    # Nothing here can run Windows PowerShell 5.1, so its grammar is checked instead: the script
    # blocks in the shipped format and type data must not use syntax that only PowerShell 7 parses.
    BeforeAll {
        function Get-SevenOnlySyntax([string] $Code) {
            $tokens = $errors = $null
            $ast = [System.Management.Automation.Language.Parser]::ParseInput($Code, [ref] $tokens, [ref] $errors)
            $errors | Should -BeNullOrEmpty
            $ast.FindAll({
                    param($node)
                    $node -is [System.Management.Automation.Language.TernaryExpressionAst] -or
                    $node -is [System.Management.Automation.Language.PipelineChainAst] -or
                    ($node -is [System.Management.Automation.Language.BinaryExpressionAst] -and $node.Operator -eq 'QuestionQuestion') -or
                    ($node -is [System.Management.Automation.Language.AssignmentStatementAst] -and $node.Operator -eq 'QuestionQuestionEquals') -or
                    ($node -is [System.Management.Automation.Language.MemberExpressionAst] -and $node.NullConditional) -or
                    ($node -is [System.Management.Automation.Language.IndexExpressionAst] -and $node.NullConditional)
                }, $true) | ForEach-Object { $_.Extent.Text }
        }
    }

    It 'finds 7-only syntax when it is there' {
        Get-SevenOnlySyntax '$a ?? $b; $x ? 1 : 2; a && b; ${o}?.Name' | Should -HaveCount 4
    }

    It 'keeps every script block in the shipped ps1xml files to 5.1 syntax' {
        $root = Split-Path (Join-Path $env:RUNTOOLS_MODULE_PATH 'RunTools.psd1')
        $files = @(Get-ChildItem $root -Filter *.ps1xml)
        $files.Count | Should -BeGreaterOrEqual 2
        $blocks = foreach ($file in $files) { ([xml](Get-Content -Raw $file.FullName)).SelectNodes('//ScriptBlock') | ForEach-Object InnerText }
        @($blocks).Count | Should -BeGreaterThan 0
        foreach ($block in $blocks) { Get-SevenOnlySyntax $block | Should -BeNullOrEmpty -Because $block }
    }
}
