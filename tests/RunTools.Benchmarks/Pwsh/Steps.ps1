# P4: per-step cost: Start-Run of a script with N empty Invoke-RunStep calls beside Invoke-Build's
# Build-Checkpoint of a build script with N empty tasks, interleaved round by round.
param(
    [Parameter(Mandatory)] [string] $Module,
    [Parameter(Mandatory)] [string] $Work,
    [Parameter(Mandatory)] [string] $InvokeBuild,
    [int] $Steps = 200,
    [int] $Rounds = 5
)
. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module $Module
Import-Module (Join-Path $InvokeBuild 'InvokeBuild.psd1')
$checkpointScript = Join-Path $InvokeBuild 'Build-Checkpoint.ps1'

$runScript = Join-Path $Work 'steps-run.ps1'
Set-Content -LiteralPath $runScript -Encoding utf8NoBOM -Value @'
param($N)
$start = [Diagnostics.Stopwatch]::GetTimestamp()
foreach ($i in 1..$N) { Invoke-RunStep "s$i" { } }
$global:RtBenchSeconds = ([Diagnostics.Stopwatch]::GetTimestamp() - $start) / [double][Diagnostics.Stopwatch]::Frequency
'@
function New-BuildScript([int] $N) {
    $path = Join-Path $Work "steps-$N.build.ps1"
    $lines = foreach ($i in 1..$N) { "task t$i {}" }
    # One more task that runs them all, as a build's default task does.
    Set-Content -LiteralPath $path -Encoding utf8NoBOM -Value (@($lines) + "task all $((1..$N | ForEach-Object { "t$_" }) -join ',')")
    $path
}
$buildScript = New-BuildScript $Steps
$warmBuild = New-BuildScript 10
$root = Join-Path $Work 'runs'
$script:checkpoints = 0
function Invoke-Checkpointed([string] $File) {
    $checkpoint = Join-Path $Work ("ib-{0}.clixml" -f ++$script:checkpoints)
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    $null = & $checkpointScript -Checkpoint $checkpoint -Build @{ File = $File; Task = 'all' }
    $seconds = Get-Seconds $start
    if (Test-Path -LiteralPath $checkpoint) { throw "Build-Checkpoint left ${checkpoint}: the build did not succeed" }
    $seconds
}
function Invoke-Plain([string] $File) {
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    $null = Invoke-Build -File $File -Task all
    Get-Seconds $start
}

# Warm-up, untimed.
$null = Invoke-BenchRun $root $runScript @{ N = 10 }
$null = Invoke-Checkpointed $warmBuild
$null = Invoke-Plain $warmBuild

$measured = @(); $inside = @(); $baseline = @(); $plain = @()
for ($r = 0; $r -lt $Rounds; $r++) {
    Settle
    $run = Invoke-BenchRun $root $runScript @{ N = $Steps }
    if ($run.Info.StepsCompleted -ne $Steps) { throw "run completed $($run.Info.StepsCompleted) steps, not $Steps" }
    $measured += $run.Total; $inside += $run.Inside
    Settle
    $baseline += Invoke-Checkpointed $buildScript
    Settle
    $plain += Invoke-Plain $buildScript
    Say ("  round {0}: Start-Run {1:0.000} s, Build-Checkpoint {2:0.000} s, Invoke-Build {3:0.000} s" -f ($r + 1), $measured[-1], $baseline[-1], $plain[-1])
}

Write-BenchResult @{
    steps = $Steps; rounds = $Rounds; invoke_build_version = (Get-Module InvokeBuild).Version.ToString()
    measured = $measured; measured_inside = $inside; baseline = $baseline; invoke_build_plain = $plain
}
