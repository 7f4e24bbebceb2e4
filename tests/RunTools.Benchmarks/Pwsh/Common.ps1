# Dot-sourced by every pwsh benchmark script. Times are taken in this process with
# [Diagnostics.Stopwatch]; the result goes to stdout as one line 'RTBENCH <json>' for the harness.
Set-StrictMode -Version 3
$ErrorActionPreference = 'Stop'
# Progress would be rendered per item; the harness's children have no one to show it to.
$ProgressPreference = 'SilentlyContinue'

function Say([string] $Text) { [Console]::Error.WriteLine($Text) }

function Settle {
    # A full collection before each timed block, so one side does not pay for the other's garbage.
    [GC]::Collect(); [GC]::WaitForPendingFinalizers(); [GC]::Collect()
}

function Get-Seconds([long] $Since) {
    ([Diagnostics.Stopwatch]::GetTimestamp() - $Since) / [double][Diagnostics.Stopwatch]::Frequency
}

function Write-BenchResult([hashtable] $Result) {
    $Result['pwsh_version'] = $PSVersionTable.PSVersion.ToString()
    $Result['pwsh_runtime'] = [Runtime.InteropServices.RuntimeInformation]::FrameworkDescription
    $Result['throttle_limit_available'] = Test-ThrottleLimit
    [Console]::Out.WriteLine('RTBENCH ' + (ConvertTo-Json -InputObject $Result -Compress -Depth 6))
}

function Test-ThrottleLimit {
    # -ThrottleLimit is being added to Invoke-RunItem; until it lands the parallel rows are "not available".
    (Get-Command Invoke-RunItem).Parameters.ContainsKey('ThrottleLimit')
}

function Invoke-RawAppend([string] $Path, [int] $Count, [int] $LineBytes, [int] $FlushesPerItem = 1) {
    # The baseline of a durable item: append a line and fsync it (FlushesPerItem lines of LineBytes/FlushesPerItem each).
    $part = [Math]::Max(1, [int][Math]::Floor($LineBytes / $FlushesPerItem))
    $line = [byte[]]::new($part)
    for ($i = 0; $i -lt $part; $i++) { $line[$i] = 0x78 }
    $line[$part - 1] = 0x0A
    $stream = [IO.FileStream]::new($Path, [IO.FileMode]::Append, [IO.FileAccess]::Write, [IO.FileShare]::Read)
    try {
        $start = [Diagnostics.Stopwatch]::GetTimestamp()
        for ($i = 0; $i -lt $Count; $i++) {
            for ($f = 0; $f -lt $FlushesPerItem; $f++) {
                $stream.Write($line, 0, $line.Length)
                $stream.Flush($true)
            }
        }
        Get-Seconds $start
    }
    finally {
        $stream.Dispose()
        [IO.File]::Delete($Path)
    }
}

function Invoke-BenchRun([string] $Root, [string] $ScriptPath, [hashtable] $Parameters) {
    # One run through Start-Run: the script stores the time of its own timed part in $global:RtBenchSeconds.
    $global:RtBenchSeconds = $null
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    $info = Start-Run -Name bench -ScriptPath $ScriptPath -Root $Root -Parameters $Parameters
    $total = Get-Seconds $start
    if ($info.Status -ne 'Completed') { throw "run $($info.RunId) ended $($info.Status): $($info.Error)" }
    [pscustomobject]@{ Total = $total; Inside = [double]$global:RtBenchSeconds; Info = $info }
}

function Get-CoreType([string] $Name) {
    # RunTools.Core, loaded by the module in its private load context; reached by reflection.
    $core = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'RunTools.Core' } | Select-Object -First 1
    if (-not $core) { throw 'RunTools.Core is not loaded: run a RunTools cmdlet first.' }
    $core.GetType($Name, $true)
}
