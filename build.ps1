<#
.SYNOPSIS
    Builds, tests, documents and packages RunTools.
.DESCRIPTION
    Tasks:
      Build    dotnet build; assembles the importable module in out/RunTools (manifest version stamped)
      Test     every tier: xUnit and, where pwsh + Pester 5 are found, Pester (same as `dotnet test RunTools.sln`)
      Docs     turns docs/*.md (PlatyPS markdown) into MAML help in out/RunTools/en-US where PlatyPS is available
      Package  zips out/RunTools as out/RunTools-<version>.zip
      Clean    removes out/ and TestResults/
.EXAMPLE
    ./build.ps1 Build, Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Docs', 'Package', 'Clean')]
    [string[]] $Task = @('Build', 'Test'),
    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release'
)
$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot
$moduleOut = Join-Path $PSScriptRoot 'out/RunTools'

function Invoke-Native([string] $File, [string[]] $Arguments) {
    & $File @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$File $($Arguments -join ' ') failed with exit code $LASTEXITCODE." }
}

foreach ($name in $Task) {
    Write-Host "== $name" -ForegroundColor Cyan
    switch ($name) {
        'Clean' {
            Remove-Item -Recurse -Force -ErrorAction SilentlyContinue (Join-Path $PSScriptRoot 'out'), (Join-Path $PSScriptRoot 'TestResults')
        }
        'Build' {
            Invoke-Native dotnet @('build', 'RunTools.sln', '-c', $Configuration)
            Test-ModuleManifest (Join-Path $moduleOut 'RunTools.psd1') | Format-List Name, Version, ExportedCmdlets
        }
        'Test' {
            Invoke-Native dotnet @('test', 'RunTools.sln', '-c', $Configuration)
        }
        'Docs' {
            if (-not (Get-Module -ListAvailable Microsoft.PowerShell.PlatyPS)) {
                Write-Warning 'Docs skipped: Microsoft.PowerShell.PlatyPS is not installed.'
                break
            }
            Import-Module Microsoft.PowerShell.PlatyPS
            $pages = Get-ChildItem (Join-Path $PSScriptRoot 'docs/cmdlets') -Filter '*-*.md' -ErrorAction SilentlyContinue
            if (-not $pages) { Write-Warning 'Docs: no cmdlet pages under docs/cmdlets yet.'; break }
            $help = $pages | Measure-PlatyPSMarkdown | Where-Object FileType -Match 'CommandHelp' |
                Import-MarkdownCommandHelp -Path { $_.FilePath }
            $help | Export-MamlCommandHelp -OutputFolder (Join-Path $PSScriptRoot 'out/maml') -Force | Out-Null
            New-Item -ItemType Directory -Force (Join-Path $moduleOut 'en-US') | Out-Null
            Get-ChildItem (Join-Path $PSScriptRoot 'out/maml') -Recurse -Filter '*.xml' |
                Copy-Item -Destination (Join-Path $moduleOut 'en-US') -Force
        }
        'Package' {
            $version = (Import-PowerShellDataFile (Join-Path $moduleOut 'RunTools.psd1')).ModuleVersion
            $zip = Join-Path $PSScriptRoot "out/RunTools-$version.zip"
            Compress-Archive -Path $moduleOut -DestinationPath $zip -Force
            Get-Item $zip
        }
    }
}
