# A run script for the Pester tier: a step with output, then keyed items whose side effect is an
# appended line in -EffectsPath, flushed to disk. -FailOn makes that key throw while -FailFlag exists.
# -HangOn makes that key wait after its side effect until the process is killed: a kill then lands
# mid-item for certain (the key is in doubt).
param($Config, [string] $EffectsPath, [int] $Count = 50, [int] $DelayMilliseconds = 0, [string] $FailOn, [string] $FailFlag, [string] $HangOn)

# [IO.File] resolves a relative path against the process directory, not the PowerShell location.
$EffectsPath = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($EffectsPath)

$prepared = Invoke-RunStep prepare { [pscustomobject]@{ Count = $Count; Stamp = [guid]::NewGuid().ToString() } }
Set-Content -Path "$EffectsPath.prepared" -Value $prepared.Stamp

1..$prepared.Count | ForEach-Object { 'k{0:D3}' -f $_ } | Invoke-RunItem -Key { $_ } -Step work {
    if ($FailOn -eq $_ -and $FailFlag -and (Test-Path $FailFlag)) { throw "item $_ failed on purpose" }
    $stream = [IO.File]::Open($EffectsPath, 'Append', 'Write', 'ReadWrite')
    try { $bytes = [Text.Encoding]::UTF8.GetBytes("$_`n"); $stream.Write($bytes, 0, $bytes.Length); $stream.Flush($true) } finally { $stream.Dispose() }
    if ($HangOn -eq $_) { Start-Sleep -Seconds 600 }
    if ($DelayMilliseconds) { Start-Sleep -Milliseconds $DelayMilliseconds }
    "done $_"
}

Invoke-RunStep finish { 'finished' }
