param($Items)
# The recorded script of benchmark P5: keys 1..$Items are done (a synthesized journal says so);
# the first new item's body marks the time.
Invoke-RunStep work {
    1..($Items + 8) | Invoke-RunItem -Key { $_ } {
        if ($null -eq $global:RtBenchFirstItem) { $global:RtBenchFirstItem = [Diagnostics.Stopwatch]::GetTimestamp() }
    }
}
