# Help for every exported cmdlet: synopsis, description, parameter descriptions and examples come from the
# MAML in module/en-US (built from docs/cmdlets by `./build.ps1 -Task Docs`), and the committed MAML is current.
BeforeDiscovery {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $commands = @(Get-Command -Module RunTools -CommandType Cmdlet | Sort-Object Name | ForEach-Object { @{ Name = $_.Name } })
}

BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $repoRoot = Split-Path $PSScriptRoot -Parent
    $commonParameters = [System.Management.Automation.PSCmdlet]::CommonParameters
    function Get-Text($Value) { (@($Value) | ForEach-Object { if ($_ -is [string]) { $_ } else { $_.Text } }) -join "`n" }
}

Describe 'Help for <Name>' -ForEach $commands {
    BeforeAll {
        $help = Get-Help -Name $Name -Full
        $command = Get-Command -Name $Name
    }

    It 'has a markdown page in docs/cmdlets' {
        Join-Path $repoRoot "docs/cmdlets/$Name.md" | Should -Exist
    }

    It 'has a synopsis, not the generated syntax placeholder' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis.Trim() | Should -Not -BeLike "$Name *"
        $help.Synopsis.Trim() | Should -Not -Be $Name
        $help.Synopsis | Should -Not -Match '\{\{'
    }

    It 'has a description' {
        $text = Get-Text $help.description
        $text.Trim() | Should -Not -BeNullOrEmpty
        $text | Should -Not -Match '\{\{'
    }

    It 'describes every parameter' {
        $names = @($command.Parameters.Keys | Where-Object { $_ -notin $commonParameters })
        foreach ($parameter in $names) {
            $entry = @($help.parameters.parameter) | Where-Object name -EQ $parameter
            $entry | Should -Not -BeNullOrEmpty -Because "-$parameter of $Name should be in the help"
            $text = Get-Text $entry.description
            $text.Trim() | Should -Not -BeNullOrEmpty -Because "-$parameter of $Name needs a description"
            $text | Should -Not -Match '\{\{' -Because "-$parameter of $Name has a placeholder"
        }
    }

    It 'has at least two examples, each with code and remarks' {
        $examples = @($help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($example in $examples) {
            $example.code | Should -Not -BeNullOrEmpty -Because "$($example.title) needs code"
            $example.code | Should -Not -Match '```' -Because 'code fences must not reach Get-Help'
            (Get-Text $example.remarks).Trim() | Should -Not -BeNullOrEmpty -Because "$($example.title) needs remarks"
        }
    }
}

Describe 'Module help files' {
    It 'has about_RunTools' {
        Join-Path $env:RUNTOOLS_MODULE_PATH 'en-US/about_RunTools.help.txt' | Should -Exist
        Get-Help about_RunTools | Out-String | Should -Match 'run directory'
    }

    It 'ships the committed MAML in the built module' {
        $committed = Join-Path $repoRoot 'module/en-US/RunTools.dll-Help.xml'
        $built = Join-Path $env:RUNTOOLS_MODULE_PATH 'en-US/RunTools.dll-Help.xml'
        $committed | Should -Exist
        $built | Should -Exist
        ((Get-Content -Raw $built) -replace '\s+', '') | Should -BeExactly ((Get-Content -Raw $committed) -replace '\s+', '')
    }

    It 'has committed MAML that is current with docs/cmdlets' {
        if (-not (Get-Module -ListAvailable Microsoft.PowerShell.PlatyPS)) {
            Set-ItResult -Skipped -Because 'Microsoft.PowerShell.PlatyPS is not installed'
            return
        }

        # Run the real Docs task on a copy of build.ps1 and docs/cmdlets, so the test checks what the task writes.
        $sandbox = Join-Path $TestDrive 'docs-build'
        $null = New-Item -ItemType Directory -Force (Join-Path $sandbox 'docs')
        Copy-Item (Join-Path $repoRoot 'build.ps1') $sandbox
        Copy-Item (Join-Path $repoRoot 'docs/cmdlets') (Join-Path $sandbox 'docs') -Recurse
        $pwsh = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
        $log = & $pwsh -NoProfile -NonInteractive -File (Join-Path $sandbox 'build.ps1') -Task Docs 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($log | Out-String)

        $fresh = Join-Path $sandbox 'module/en-US/RunTools.dll-Help.xml'
        $fresh | Should -Exist
        $committed = Join-Path $repoRoot 'module/en-US/RunTools.dll-Help.xml'
        ((Get-Content -Raw $committed) -replace '\s+', '') | Should -BeExactly ((Get-Content -Raw $fresh) -replace '\s+', '') -Because 'module/en-US/RunTools.dll-Help.xml is stale: run ./build.ps1 -Task Docs and commit it'
    }
}
