# A run script for the Pester tier's parallel tests: keyed items run -ThrottleLimit at a time; each
# item's side effect is a line appended (and flushed) to its own file under -EffectsDir (one file
# per key, since concurrent appends to one file would overwrite each other), then it sleeps
# -DelayMilliseconds, so that a kill or a stop finds items in flight.
param($Config, [string] $EffectsDir, [int] $Count = 64, [int] $DelayMilliseconds = 0, [int] $ThrottleLimit = 8)

$null = New-Item -ItemType Directory -Force -Path $EffectsDir
1..$Count | ForEach-Object { 'k{0:D3}' -f $_ } | Invoke-RunItem -Key { $_ } -Step work -ThrottleLimit $ThrottleLimit {
    $stream = [IO.File]::Open((Join-Path $using:EffectsDir $_), 'Append', 'Write', 'ReadWrite')
    try { $bytes = [Text.Encoding]::UTF8.GetBytes("$_`n"); $stream.Write($bytes, 0, $bytes.Length); $stream.Flush($true) } finally { $stream.Dispose() }
    if ($using:DelayMilliseconds) { Start-Sleep -Milliseconds $using:DelayMilliseconds }
    "done $_"
}

Invoke-RunStep finish { 'finished' }
