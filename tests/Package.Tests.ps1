# The package users install: the manifest the build assembles in out/RunTools, and the nupkg that
# tools/Publish-ModulePackage.ps1 (the code behind `build.ps1 Package`) makes of it, installed with
# Install-PSResource into a fresh module path and imported by name in a child pwsh that sees only that path.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    $script:repoRoot = (Resolve-Path (Join-Path $PSScriptRoot '..')).ProviderPath
    $script:modulePath = (Resolve-Path $env:RUNTOOLS_MODULE_PATH).ProviderPath
    $script:manifestPath = Join-Path $modulePath 'RunTools.psd1'
    $script:version = ([xml](Get-Content -Raw (Join-Path $repoRoot 'Directory.Build.props'))).SelectSingleNode('//VersionPrefix').InnerText

    # What CHANGELOG.md says under "## <version>", up to the next "## " heading.
    function Get-ChangelogSection([string] $Version) {
        $lines = @(Get-Content (Join-Path $repoRoot 'CHANGELOG.md'))
        $start = [array]::FindIndex($lines, [Predicate[string]] { param($l) $l -match ('^## ' + [regex]::Escape($Version) + '(?![\w.-])') })
        if ($start -lt 0) { throw "CHANGELOG.md has no '## $Version' heading." }
        $end = $start + 1
        while ($end -lt $lines.Count -and $lines[$end] -notmatch '^## ') { $end++ }
        ($lines[($start + 1)..($end - 1)] -join "`n").Trim()
    }

    # Runs -Command in a child pwsh in $TestDrive and returns what it reports as JSON on its one RESULT: line.
    function Invoke-Child([hashtable] $Environment, [string] $Command) {
        $child = Start-ChildPwsh -Command $Command -Environment $Environment -WorkingDirectory $TestDrive
        $exitCode = Wait-ChildPwsh -Child $child -TimeoutSec 90
        $line = @($child.Stdout.Result -split '\r?\n' | Where-Object { $_ -like 'RESULT:*' })
        if ($exitCode -ne 0 -or $line.Count -ne 1) {
            throw "The child pwsh failed (exit code $exitCode):`n$(Get-ChildPwshOutput $child)"
        }
        $line[0].Substring(7) | ConvertFrom-Json
    }
}

Describe 'The assembled manifest' {
    It 'passes Test-ModuleManifest and carries the version of Directory.Build.props' {
        $manifest = Test-ModuleManifest -Path $manifestPath
        $version | Should -Match '^\d+\.\d+\.\d+$'
        $manifest.Version | Should -Be ([version]$version)
        $manifest.Name | Should -Be 'RunTools'
    }

    It 'names the project and its license, and ships LICENSE in the module folder' {
        $manifest = Test-ModuleManifest -Path $manifestPath
        $manifest.ProjectUri | Should -Be 'https://github.com/runtools/RunTools'
        $manifest.LicenseUri | Should -Be 'https://github.com/runtools/RunTools/blob/main/LICENSE'
        Join-Path $modulePath 'LICENSE' | Should -Exist
        Get-Content -Raw (Join-Path $modulePath 'LICENSE') | Should -BeExactly (Get-Content -Raw (Join-Path $repoRoot 'LICENSE'))
    }

    It 'carries the CHANGELOG section of its version as ReleaseNotes, apostrophes included' {
        $expected = Get-ChangelogSection $version
        $expected | Should -Match "'" -Because 'the section has apostrophes, which the build must write twice in the manifest'
        $notes = (Import-PowerShellDataFile -Path $manifestPath).PrivateData.PSData.ReleaseNotes
        ($notes -replace '\r\n', "`n") | Should -BeExactly $expected
        (Test-ModuleManifest -Path $manifestPath).ReleaseNotes -replace '\r\n', "`n" | Should -BeExactly $expected
    }
}

# Install-PSResource has no destination folder: it installs into the CurrentUser scope's module path, on
# Linux and macOS $HOME/.local/share/powershell/Modules, and reads registered repositories from a per-user
# file under .NET's LocalApplicationData, there $XDG_DATA_HOME. The children here get a fresh HOME and
# XDG_DATA_HOME in a temp folder, so the install lands there and the user's module path and registrations
# stay as they were (asserted). The folder must exist: .NET gives an empty LocalApplicationData for a
# missing one, and PSResourceGet then writes into the working directory. Windows has no such redirect (the
# install would go into the user's Documents folder), so this part does not run there.
Describe 'The package' -Skip:$IsWindows {
    BeforeAll {
        $script:freshHome = Join-Path $TestDrive 'home'
        $script:data = (New-Item -ItemType Directory (Join-Path $freshHome '.local/share')).FullName
        $script:freshModules = Join-Path $data 'powershell/Modules'
        $script:repository = Join-Path $TestDrive 'repository'

        $userData = [Environment]::GetFolderPath('LocalApplicationData', 'DoNotVerify')
        $script:userFiles = @(
            (Join-Path $userData 'PSResourceGet/PSResourceRepository.xml'),
            (Join-Path $userData 'powershell/Modules/RunTools'),
            (Join-Path $HOME '.local/share/powershell/Modules/RunTools')
        ) | Select-Object -Unique
        function Get-UserState {
            foreach ($path in $userFiles) {
                if (Test-Path -LiteralPath $path -PathType Leaf) { "$path $((Get-FileHash -LiteralPath $path).Hash)" }
                elseif (Test-Path -LiteralPath $path) { "$path " + ((Get-ChildItem -LiteralPath $path -Recurse -Force | ForEach-Object { "$($_.FullName)@$($_.LastWriteTimeUtc.Ticks)" }) -join ',') }
                else { "$path absent" }
            }
        }
        $script:userStateBefore = Get-UserState

        $script:nupkg = & (Join-Path $repoRoot 'tools/Publish-ModulePackage.ps1') -ModulePath $modulePath -RepositoryPath $repository

        $script:install = Invoke-Child -Environment @{
            HOME            = $freshHome
            XDG_DATA_HOME   = $data
            RT_REPOSITORY   = $repository
            RT_VERSION      = $version
            RT_TEMPORARY    = (New-Item -ItemType Directory (Join-Path $TestDrive 'install-temp')).FullName
        } -Command @'
$name = 'RunToolsTest-' + [guid]::NewGuid().ToString('N')
Register-PSResourceRepository -Name $name -Uri $env:RT_REPOSITORY -Trusted
try {
    $installed = Install-PSResource -Name RunTools -Version $env:RT_VERSION -Repository $name -Scope CurrentUser -TemporaryPath $env:RT_TEMPORARY -PassThru -Quiet
    'RESULT:' + (@($installed | ForEach-Object { [pscustomobject]@{ Name = $_.Name; Version = "$($_.Version)" } }) | ConvertTo-Json -Compress -AsArray)
}
finally {
    Unregister-PSResourceRepository -Name $name
}
'@
    }

    It 'is one nupkg of the module name and version, with the manifest''s project and license addresses' {
        $nupkg.Name | Should -Be "RunTools.$version.nupkg"
        @(Get-ChildItem $repository).Name | Should -Be @("RunTools.$version.nupkg")
        Add-Type -AssemblyName System.IO.Compression.FileSystem
        $zip = [IO.Compression.ZipFile]::OpenRead($nupkg.FullName)
        try {
            $entries = $zip.Entries.FullName
            $reader = [IO.StreamReader]::new($zip.GetEntry('RunTools.nuspec').Open())
            try { $nuspec = [xml]$reader.ReadToEnd() } finally { $reader.Dispose() }
        }
        finally { $zip.Dispose() }
        $entries | Should -Contain 'LICENSE'
        $entries | Should -Contain 'Dependencies/RunTools.Core.dll'
        $entries | Should -Contain 'Dependencies/PostgreSql/Npgsql.dll'
        $nuspec.package.metadata.version | Should -Be $version
        $nuspec.package.metadata.projectUrl | Should -Be 'https://github.com/runtools/RunTools'
        $nuspec.package.metadata.licenseUrl | Should -Be 'https://github.com/runtools/RunTools/blob/main/LICENSE'
    }

    It 'installs with Install-PSResource into the fresh module path' {
        @($install).Count | Should -Be 1
        $install[0].Name | Should -Be 'RunTools'
        $install[0].Version | Should -Be $version
        Join-Path $freshModules "RunTools/$version/RunTools.psd1" | Should -Exist
        Join-Path $freshModules "RunTools/$version/LICENSE" | Should -Exist
        Join-Path $data 'PSResourceGet/PSResourceRepository.xml' | Should -Exist -Because 'the registration went to the fresh data folder'
    }

    It 'leaves the user''s module path and repository registrations as they were' {
        Get-UserState | Should -Be $userStateBefore
    }

    It 'imports by name in a pwsh that sees only that path, and runs a run end to end' {
        $script = Join-Path $TestDrive 'job.ps1'
        Set-Content -LiteralPath $script -Value @'
param($Config)
$count = Invoke-RunStep prepare { 3 }
1..$count | ForEach-Object { "item$_" } | Invoke-RunItem -Key { $_ } -Step work { "done $_" }
'@
        $result = Invoke-Child -Environment @{
            HOME          = $freshHome
            XDG_DATA_HOME = $data
            RT_MODULES    = $freshModules
            RT_SCRIPT     = $script
            RT_ROOT       = (Join-Path $TestDrive 'runs')
        } -Command @'
$env:PSModulePath = $env:RT_MODULES + [IO.Path]::PathSeparator + (Join-Path $PSHOME 'Modules')
Import-Module RunTools
$module = Get-Module RunTools
$run = Start-Run -Name packaged -ScriptPath $env:RT_SCRIPT -Root $env:RT_ROOT
$listed = @(Get-Run -Root $env:RT_ROOT)
$test = Test-Run -RunId $run.RunId -Root $env:RT_ROOT
'RESULT:' + ([pscustomobject]@{
    PSModulePath = $env:PSModulePath
    Version      = "$($module.Version)"
    ModuleBase   = $module.ModuleBase
    Assemblies   = @([AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -like 'RunTools*' } | ForEach-Object Location)
    RunId        = $run.RunId
    Status       = "$($run.Status)"
    Steps        = $run.StepsCompleted
    Items        = $run.ItemsCompleted
    Listed       = @($listed | ForEach-Object { "$($_.RunId) $($_.Status)" })
    IsValid      = $test.IsValid
    Problems     = @($test.Problems | ForEach-Object { "$_" })
} | ConvertTo-Json -Compress)
'@
        $installedBase = Join-Path $freshModules "RunTools/$version"
        @($result.PSModulePath -split [IO.Path]::PathSeparator) | Should -Be @($freshModules, (Join-Path $PSHOME 'Modules'))
        $result.Version | Should -Be $version
        $result.ModuleBase | Should -Be $installedBase
        $result.Assemblies | Should -Not -BeNullOrEmpty
        foreach ($location in $result.Assemblies) { $location | Should -BeLike "$installedBase*" }
        $result.Status | Should -Be 'Completed'
        $result.Steps | Should -Be 2
        $result.Items | Should -Be 3
        $result.Listed | Should -Be @("$($result.RunId) Completed")
        $result.Problems | Should -BeNullOrEmpty
        $result.IsValid | Should -BeTrue
    }
}
