<#
.SYNOPSIS
    Builds, tests, documents and packages RunTools.
.DESCRIPTION
    Tasks:
      Build    dotnet build; assembles the importable module in out/RunTools (manifest version stamped)
      Test     every tier: xUnit, the in-process cmdlet tests and Pester in the pinned pwsh (same as `dotnet test RunTools.sln`)
      Docs     turns docs/cmdlets/*.md (PlatyPS markdown) into MAML help in out/RunTools/en-US and the committed
               module/en-US copy, where Microsoft.PowerShell.PlatyPS is available
      Package  builds the module in Release and packs it as out/packages/RunTools.<version>.nupkg with
               Publish-PSResource (tools/Publish-ModulePackage.ps1); out/packages is a folder repository to
               install from: Register-PSResourceRepository -Name RunToolsLocal -Uri ./out/packages -Trusted;
               Install-PSResource RunTools -Repository RunToolsLocal
      Coverage line coverage of RunTools.Core and RunTools over the xUnit tiers (Core tests and in-process
               cmdlet tests), per assembly; reports in TestResults/coverage (see docs/testing.md)
      Clean    removes out/ and TestResults/
.EXAMPLE
    ./build.ps1 Build, Test
#>
[CmdletBinding()]
param(
    [ValidateSet('Build', 'Test', 'Docs', 'Package', 'Clean', 'Coverage')]
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
            # docs/cmdlets/*.md (PlatyPS v2 markdown) -> MAML help. The result goes to out/RunTools/en-US and
            # to the committed copy module/en-US, which every build copies into the module, so Get-Help works
            # on machines without PlatyPS. Re-run this task after editing docs/cmdlets and commit the XML.
            if (-not (Get-Module -ListAvailable Microsoft.PowerShell.PlatyPS)) {
                Write-Warning 'Docs skipped: Microsoft.PowerShell.PlatyPS is not installed (Install-Module Microsoft.PowerShell.PlatyPS). The committed module/en-US help is unchanged.'
                break
            }
            Import-Module Microsoft.PowerShell.PlatyPS -ErrorAction Stop
            $pages = Get-ChildItem (Join-Path $PSScriptRoot 'docs/cmdlets') -Filter '*-*.md' -ErrorAction SilentlyContinue
            if (-not $pages) { Write-Warning 'Docs: no cmdlet pages under docs/cmdlets yet.'; break }
            $help = @(Measure-PlatyPSMarkdown -Path $pages.FullName | Where-Object FileType -Match 'CommandHelp' |
                ForEach-Object { Import-MarkdownCommandHelp -Path $_.FilePath })
            $staging = Join-Path ([IO.Path]::GetTempPath()) ('runtools-maml-' + [guid]::NewGuid().ToString('N'))
            try {
                $null = $help | Export-MamlCommandHelp -OutputFolder $staging -Force
                $xmlPath = @(Get-ChildItem $staging -Recurse -Filter '*.xml')
                if ($xmlPath.Count -ne 1) { throw "Docs: expected one MAML file from PlatyPS, got $($xmlPath.Count)." }

                # PlatyPS 1.0 writes an example's fenced code, text and a U+0080 separator as paragraphs of
                # <maml:introduction>, leaving <dev:code> and <dev:remarks> empty. Get-Help shows such examples
                # with the ``` fences and without a code part, so move the code and the text where MAML wants them.
                $maml = [xml]::new()
                $maml.PreserveWhitespace = $false
                $maml.Load($xmlPath[0].FullName)
                $ns = [Xml.XmlNamespaceManager]::new($maml.NameTable)
                $ns.AddNamespace('command', 'http://schemas.microsoft.com/maml/dev/command/2004/10')
                $ns.AddNamespace('maml', 'http://schemas.microsoft.com/maml/2004/10')
                $ns.AddNamespace('dev', 'http://schemas.microsoft.com/maml/dev/2004/10')
                foreach ($example in $maml.SelectNodes('//command:example', $ns)) {
                    $intro = $example.SelectSingleNode('maml:introduction', $ns)
                    $code = $example.SelectSingleNode('dev:code', $ns)
                    $remarks = $example.SelectSingleNode('dev:remarks', $ns)
                    if (-not $intro -or -not $code -or -not $remarks -or $code.InnerText.Trim()) { continue }
                    $codeText = [Collections.Generic.List[string]]::new()
                    foreach ($para in @($intro.SelectNodes('maml:para', $ns))) {
                        $text = $para.InnerText
                        if ($text -match '^\s*```') {
                            $codeText.Add(($text -replace '^\s*```[^\r\n]*\r?\n', '' -replace '\r?\n```\s*$', ''))
                        }
                        elseif ($text.Trim([char]0x80).Trim()) {
                            $null = $remarks.AppendChild($para.Clone())
                        }
                        $null = $intro.RemoveChild($para)
                    }
                    $code.InnerText = $codeText -join "`n`n"
                }
                # The same separator paragraph stands between the paragraphs of other sections.
                foreach ($para in @($maml.SelectNodes('//maml:para', $ns))) {
                    if (-not $para.InnerText.Trim([char]0x80).Trim() -and $para.InnerText.Contains([char]0x80)) {
                        $null = $para.ParentNode.RemoveChild($para)
                    }
                }

                $settings = [Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [Text.UTF8Encoding]::new($false); NewLineChars = "`n" }
                foreach ($folder in (Join-Path $moduleOut 'en-US'), (Join-Path $PSScriptRoot 'module/en-US')) {
                    $null = New-Item -ItemType Directory -Force $folder
                    $target = Join-Path $folder 'RunTools.dll-Help.xml'
                    $writer = [Xml.XmlWriter]::Create($target, $settings)
                    try { $maml.Save($writer) } finally { $writer.Dispose() }
                    Write-Host "Docs: wrote $target ($($help.Count) commands)"
                }
            }
            finally {
                Remove-Item -Recurse -Force $staging -ErrorAction SilentlyContinue
            }
        }
        'Coverage' {
            # coverlet instruments the RunTools assemblies in each test project's output folder; the cmdlet
            # tests import the module from there (flat layout), so both Core and the cmdlets are measured.
            $results = Join-Path $PSScriptRoot 'TestResults/coverage'
            Remove-Item -Recurse -Force $results -ErrorAction SilentlyContinue
            $props = [xml](Get-Content -Raw (Join-Path $PSScriptRoot 'Directory.Packages.props'))
            $version = ($props.Project.ItemGroup.PackageVersion | Where-Object Include -EQ 'coverlet.collector').Version
            $packages = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path $HOME '.nuget/packages' }
            Invoke-Native dotnet @('restore', 'tests/RunTools.Cmdlets.Tests')
            $collector = Join-Path $packages "coverlet.collector/$version/build/net10.0"
            foreach ($project in 'tests/RunTools.Core.Tests', 'tests/RunTools.Cmdlets.Tests') {
                Invoke-Native dotnet @('test', $project, '-c', $Configuration, '--collect', 'XPlat Code Coverage', '--test-adapter-path', $collector,
                    '--results-directory', $results, '--', 'DataCollectionRunSettings.DataCollectors.DataCollector.Configuration.Format=cobertura',
                    'DataCollectionRunSettings.DataCollectors.DataCollector.Configuration.Include=[RunTools]*,[RunTools.Core]*,[RunTools.Loader]*',
                    'DataCollectionRunSettings.DataCollectors.DataCollector.Configuration.ExcludeByFile=**/*.g.cs')
            }

            # A line counts as covered when any tier hit it: union per assembly, file and line number.
            $lines = @{}
            foreach ($report in Get-ChildItem $results -Recurse -Filter 'coverage.cobertura.xml') {
                $xml = [xml](Get-Content -Raw $report.FullName)
                $source = @($xml.coverage.sources.source)[0]
                foreach ($package in $xml.coverage.packages.package) {
                    foreach ($class in $package.classes.class) {
                        $file = [IO.Path]::GetFullPath($class.filename, $source)
                        foreach ($line in $class.lines.line) {
                            $key = "$($package.name)|$file|$($line.number)"
                            $lines[$key] = [bool]$lines[$key] -or ([int]$line.hits -gt 0)
                        }
                    }
                }
            }
            $lines.GetEnumerator() | Group-Object { $_.Key.Split('|')[0] } | Sort-Object Name | ForEach-Object {
                $covered = @($_.Group | Where-Object Value).Count
                [pscustomobject]@{ Assembly = $_.Name; Lines = $_.Count; Covered = $covered; Percent = [math]::Round(100.0 * $covered / $_.Count, 1) }
            } | Format-Table -AutoSize | Out-String | Write-Host
        }
        'Package' {
            # Always Release, whatever -Configuration says: this is what users install.
            Invoke-Native dotnet @('build', 'src/RunTools/RunTools.csproj', '-c', 'Release')
            & (Join-Path $PSScriptRoot 'tools/Publish-ModulePackage.ps1') -ModulePath $moduleOut -RepositoryPath (Join-Path $PSScriptRoot 'out/packages')
        }
    }
}
