<#
.SYNOPSIS
    Packs a built module folder as a nupkg into a local folder repository with Publish-PSResource and
    returns the nupkg.
.DESCRIPTION
    The one packaging step: build.ps1 Package and tests/Package.Tests.ps1 both call it.

    PSResourceGet publishes only to a registered repository, and keeps the registrations in one
    per-user file, PSResourceGet/PSResourceRepository.xml under .NET's LocalApplicationData. So the
    publish runs in a child pwsh that registers the folder under a unique name and unregisters it in
    finally. On Linux and macOS the child also gets XDG_DATA_HOME pointing at a temporary folder (that
    is where .NET puts LocalApplicationData there), so the user's file is never read or written, even
    if the child is killed. Windows has no such variable: there the unregistration alone cleans up.
    The folder must exist: for a missing one .NET returns an empty LocalApplicationData and
    PSResourceGet writes its file relative to the working directory, which is the temporary folder too.

    A package of the same name and version already in the repository is replaced.
.EXAMPLE
    ./tools/Publish-ModulePackage.ps1 -ModulePath out/RunTools -RepositoryPath out/packages
#>
[CmdletBinding()]
[OutputType([IO.FileInfo])]
param(
    # The module folder: named as the module, with its manifest inside (out/RunTools).
    [Parameter(Mandatory)] [string] $ModulePath,
    # The folder repository the nupkg is written to; created when missing.
    [Parameter(Mandatory)] [string] $RepositoryPath,
    [int] $TimeoutSec = 120
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3
Import-Module (Join-Path $PSScriptRoot 'ChildPwsh.psm1')

$module = (Resolve-Path -LiteralPath $ModulePath).ProviderPath
$name = Split-Path -Leaf $module
$manifest = Test-ModuleManifest -Path (Join-Path $module "$name.psd1")
$repository = (New-Item -ItemType Directory -Force -Path $RepositoryPath).FullName
$nupkg = Join-Path $repository "$name.$($manifest.Version).nupkg"
Remove-Item -LiteralPath $nupkg -Force -ErrorAction SilentlyContinue

$scratch = Join-Path ([IO.Path]::GetTempPath()) ('runtools-publish-' + [guid]::NewGuid().ToString('N'))
$environment = @{ RUNTOOLS_PUBLISH_MODULE = $module; RUNTOOLS_PUBLISH_REPOSITORY = $repository }
if (-not $IsWindows) {
    $environment.XDG_DATA_HOME = (New-Item -ItemType Directory -Force -Path (Join-Path $scratch 'data')).FullName
}
$null = New-Item -ItemType Directory -Force -Path $scratch
Push-Location -LiteralPath $scratch
try {
    $result = Invoke-ChildPwsh -TimeoutSec $TimeoutSec -Environment $environment -Command @'
$name = 'RunToolsPublish-' + [guid]::NewGuid().ToString('N')
Register-PSResourceRepository -Name $name -Uri $env:RUNTOOLS_PUBLISH_REPOSITORY -Trusted
try {
    Publish-PSResource -Path $env:RUNTOOLS_PUBLISH_MODULE -Repository $name
}
finally {
    Unregister-PSResourceRepository -Name $name
}
'@
    if ($result.ExitCode -ne 0 -or -not (Test-Path -LiteralPath $nupkg -PathType Leaf)) {
        throw "Publish-PSResource of $module to $repository failed (exit code $($result.ExitCode)); expected $nupkg.`n$($result.Output)`n$($result.Error)"
    }
}
finally {
    Pop-Location
    Remove-Item -LiteralPath $scratch -Recurse -Force -ErrorAction SilentlyContinue
}
Get-Item -LiteralPath $nupkg
