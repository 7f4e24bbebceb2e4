# The template of the module manifest: the build (AssembleModule in src/RunTools/RunTools.csproj)
# writes out/RunTools/RunTools.psd1 from it with the tokens in double braces filled in. Only that copy
# is importable; Test-ModuleManifest checks that one.
@{
    RootModule             = 'RunTools.dll'
    # Imported before the root module: isolates the dependencies in Dependencies/ (src/RunTools.Loader).
    NestedModules          = @('RunTools.Loader.dll')
    # <VersionPrefix> in Directory.Build.props.
    ModuleVersion          = '{{ModuleVersion}}'
    CompatiblePSEditions   = @('Desktop', 'Core')
    GUID                   = '5b0f5f8e-3c1d-4f0e-9a51-7f3c2e9d4a61'
    Author                 = 'RunTools contributors'
    CompanyName            = 'RunTools contributors'
    Copyright              = '(c) RunTools contributors. All rights reserved.'
    Description            = 'Crash-safe, resumable multi-step jobs: run directories with a journal, checkpointed steps and keyed items, drift detection, integrity checks and archives.'
    PowerShellVersion      = '5.1'
    DotNetFrameworkVersion = '4.7.2'
    FormatsToProcess       = @('RunTools.format.ps1xml')
    TypesToProcess         = @('RunTools.types.ps1xml')
    CmdletsToExport        = @(
        'Start-Run', 'Resume-Run', 'Stop-Run', 'Get-Run', 'Remove-Run', 'Get-RunEvent',
        'Wait-Run', 'Join-Run', 'Test-Run', 'Compare-Run', 'ConvertTo-Run', 'Export-RunArchive', 'Import-RunArchive',
        'Invoke-RunStep', 'Invoke-RunItem', 'Add-RunArtifact', 'Get-RunContext'
    )
    FunctionsToExport      = @()
    VariablesToExport      = @()
    AliasesToExport        = @()
    PrivateData            = @{
        PSData = @{
            Tags         = @('resume', 'checkpoint', 'journal', 'crash-safe', 'pipeline', 'batch', 'idempotent')
            ProjectUri   = 'https://github.com/runtools/RunTools'
            # The token is the ProjectUri above, so the address is written once.
            LicenseUri   = '{{ProjectUri}}/blob/main/LICENSE'
            # The section of CHANGELOG.md for ModuleVersion.
            ReleaseNotes = '{{ReleaseNotes}}'
        }
    }
}
