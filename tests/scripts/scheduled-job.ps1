# A scheduled job as a task scheduler runs it (pwsh -File / -Command): start or resume the run of
# scripts/items.ps1 named -Name, then hand the run's outcome to the scheduler as the exit code.
param([Parameter(Mandatory)] [string] $Root, [Parameter(Mandatory)] [string] $EffectsPath, [string] $Name = 'nightly',
    [int] $Count = 40, [int] $DelayMilliseconds = 0, [string] $FailOn, [string] $FailFlag, [string] $Failed = 'Retry', [int] $TimeoutSec = 0, [switch] $NoExit)

Import-Module $env:RUNTOOLS_MODULE_PATH
$parameters = @{ EffectsPath = $EffectsPath; Count = $Count; DelayMilliseconds = $DelayMilliseconds }
if ($FailOn) { $parameters.FailOn = $FailOn; $parameters.FailFlag = $FailFlag }
$global:LASTEXITCODE = 4 # as Start-Run's Example 5: a call PowerShell refuses before Start-Run runs exits 4
Start-Run -Name $Name -ScriptPath (Join-Path $PSScriptRoot 'items.ps1') -Root $Root -Resume -Failed $Failed -TimeoutSec $TimeoutSec -Parameters $parameters -Verbose |
    Format-List RunId, Status, Attempt, ItemsCompleted, ItemsSkipped
if (-not $NoExit) { exit $LASTEXITCODE }
