<#
    The processes of a run with workers, for the Join-Run tests (tests/JoinRun.Tests.ps1,
    tests/JoinRunFaults.Tests.ps1): an owner (Start-Run) and workers (Join-Run), each a real child
    pwsh with the module imported ($env:RUNTOOLS_MODULE_PATH) and its own local folder. Their output
    is read with Get-ChildPwshOutput (tools/ChildPwsh.psm1).
#>
Import-Module (Join-Path $PSScriptRoot 'ChildPwsh.psm1')

function Start-RunOwner {
    <#
    .SYNOPSIS
        The owner: -Prelude, then Start-Run of -Script with -Parameters on -Store's database root,
        then (in the same process, saving a pwsh start) -Check, whose last line it prints as
        CHECK <json> (Get-OwnerCheck reads it); $root and $runId are set for -Check. Prints
        OWNER ERROR <id>: <message> per error and OWNER <status> <exit code>; exits with that code.
    #>
    param(
        [Parameter(Mandatory)] $Store, [Parameter(Mandatory)] [string] $RunId, [Parameter(Mandatory)] [string] $Script,
        [hashtable] $Parameters = @{}, [Parameter(Mandatory)] [string] $Local, [string] $Check = "'null'", [string] $Prelude = '')
    $params = ($Parameters.GetEnumerator() | ForEach-Object { "$($_.Key) = '$($_.Value)'" }) -join '; '
    Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = $Local } -Command @"
$Prelude
`$info = Start-Run -Name joined -RunId $RunId -ScriptPath '$Script' -Root '$($Store.Uri)' -Parameters @{ $params } -ErrorAction SilentlyContinue -ErrorVariable runErrors
`$exit = `$LASTEXITCODE
foreach (`$e in `$runErrors) { 'OWNER ERROR {0}: {1}' -f `$e.FullyQualifiedErrorId, `$e.Exception.Message }
'OWNER {0} {1}' -f `$info.Status, `$exit
`$root = '$($Store.Uri)'; `$runId = '$RunId'
'CHECK ' + (& { $Check } | Select-Object -Last 1)
exit `$exit
"@
}

function Get-OwnerCheck {
    <# The owner's CHECK line (Start-RunOwner -Check), parsed from JSON; throws with its output when there is none. #>
    param([Parameter(Mandatory)] $Child)
    $line = (Get-ChildPwshOutput $Child) -split "`n" | Where-Object { $_ -like 'CHECK *' } | Select-Object -Last 1
    if (-not $line) { throw "The owner printed no CHECK line:`n$(Get-ChildPwshOutput $Child)" }
    $line.Substring(6) | ConvertFrom-Json
}

function Start-RunWorker {
    <#
    .SYNOPSIS
        A worker: waits (up to 60 s) until the run runs, then Join-Run on -Store's root (-Query
        adds URI options, e.g. 'lease=90'). Prints WORKER ERROR <id>: <message> per error and
        WORKER EXIT <code>; exits with Join-Run's $LASTEXITCODE.
    #>
    param([Parameter(Mandatory)] $Store, [Parameter(Mandatory)] [string] $RunId, [Parameter(Mandatory)] [string] $Local, [string] $Query)
    $uri = if ($Query) { "$($Store.Uri)&$Query" } else { $Store.Uri }
    Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = $Local } -Command @"
`$deadline = [DateTime]::UtcNow.AddSeconds(60)
while (-not (Get-Run -Root '$uri' -RunId $RunId -ErrorAction SilentlyContinue | Where-Object Status -eq Running)) {
    if ([DateTime]::UtcNow -gt `$deadline) { throw 'the run never ran' }
    Start-Sleep -Milliseconds 100
}
`$null = Join-Run -Root '$uri' -RunId $RunId -ErrorAction SilentlyContinue -ErrorVariable joinErrors
foreach (`$e in `$joinErrors) { 'WORKER ERROR {0}: {1}' -f `$e.FullyQualifiedErrorId, `$e.Exception.Message }
'WORKER EXIT {0}' -f `$LASTEXITCODE
exit `$LASTEXITCODE
"@
}

Export-ModuleMember -Function Start-RunOwner, Get-OwnerCheck, Start-RunWorker
