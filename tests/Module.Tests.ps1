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
        $other = $env:RUNTOOLS_TEST_OTHER_YAMLDOTNET
        if (-not $other -or -not (Test-Path $other)) { Set-ItResult -Skipped -Because 'no other YamlDotNet build was provided by the test driver'; return }
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
