<#
    The bad-input corpus through the module (issue 11, Proof): every case of tests/corpus/cases/*.json
    with a cmdlet equivalent runs in a child pwsh (tools/ChildPwsh.psm1), so a case that hangs or
    kills its process (a stack overflow) is named and the rest still run. Each case must end within
    its timeout with exactly the expected ErrorRecord (stable ErrorId, optionally terminating or not,
    a message with a next step) or with the expected output. Cases marked knownFailing that still
    fail are reported as skipped "known bug: ..."; see tests/corpus/README.md.
#>
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'corpus/Corpus.psm1') -Force
    # Cases with no cmdlet equivalent (a Core API shape a cmdlet cannot express) are xUnit's alone:
    # they are not Pester tests, rather than Pester tests that always skip.
    $script:cases = @(Get-CorpusCase | Where-Object { $null -ne (Get-CorpusCommand $_) } | ForEach-Object { @{ Id = $_.Id; Case = $_ } })
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'corpus/Corpus.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    $script:manifest = Get-CorpusManifest
    $all = @(Get-CorpusCase)
    $script:outcomes = @{}
    $childScript = Join-Path $PSScriptRoot 'corpus/Invoke-CorpusChild.ps1'
    $work = Join-Path ([IO.Path]::GetTempPath()) ('runtools-corpus-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
    $null = New-Item -ItemType Directory $work
    $startupSec = 60   # module import and the three template runs, on a busy machine
    $script:restarts = 0
    # Two lanes (children) share the cases; each restarts after the case it hung or crashed on.
    $lanes = foreach ($half in 0, 1) {
        $from = [int][Math]::Floor($all.Count * $half / 2); $to = [int][Math]::Floor($all.Count * ($half + 1) / 2)
        [pscustomobject]@{ Next = $from; End = $to; Child = $null; Result = $null; Current = $null; Dir = $null; Deadline = $null; Seen = 0; Released = $false; Timeout = 0 }
    }
    function Start-Lane($Lane) {
        $Lane.Result = Join-Path $work "batch-$($Lane.Next).txt"
        $null = New-Item -ItemType File $Lane.Result
        $command = "& '$childScript' -Start $($Lane.Next) -End $($Lane.End) -ResultPath '$($Lane.Result)' -WorkRoot '$(Join-Path $work "w$($Lane.Next)")'"
        $Lane.Child = Start-ChildPwsh -Command $command -ModulePath $env:RUNTOOLS_MODULE_PATH
        $Lane.Current = $null; $Lane.Seen = 0; $Lane.Deadline = [DateTime]::UtcNow.AddSeconds($startupSec)
    }
    function Stop-LaneCase($Lane, [string] $Verdict) {
        $id = $all[$Lane.Current].Id
        if (-not $script:outcomes.ContainsKey($id)) { $script:outcomes[$id] = [pscustomobject]@{ Id = $id; Crash = $Verdict } }
        $Lane.Next = $Lane.Current + 1; $Lane.Child = $null
        $script:restarts++
    }
    try {
        foreach ($lane in $lanes) { if ($lane.Next -lt $lane.End) { Start-Lane $lane } }
        while (@($lanes | Where-Object { $null -ne $_.Child }).Count -gt 0) {
            Start-Sleep -Milliseconds 50
            foreach ($lane in @($lanes | Where-Object { $null -ne $_.Child })) {
                $child = $lane.Child
                $exited = $child.Process.HasExited
                # Only whole lines: the child may be writing the last one while this reads.
                $text = [IO.File]::ReadAllText($lane.Result, [Text.Encoding]::UTF8)
                $lines = @($text.Substring(0, $text.LastIndexOf("`n") + 1).Split("`n", [StringSplitOptions]::RemoveEmptyEntries) | ForEach-Object { $_.TrimEnd("`r") })
                for (; $lane.Seen -lt $lines.Count; $lane.Seen++) {
                    $parts = $lines[$lane.Seen].Split("`t", 3)
                    if ($parts[0] -eq 'start') {
                        $lane.Current = [int]$parts[1]; $lane.Dir = $parts[2]; $lane.Released = $false
                        $lane.Timeout = [double](Get-Prop $all[$lane.Current] 'timeoutSeconds' $script:manifest.timeoutSeconds)
                        $lane.Deadline = [DateTime]::UtcNow.AddSeconds($lane.Timeout)
                    }
                    elseif ($parts[0] -eq 'done') {
                        $index = [int]$parts[1]
                        if (-not $script:outcomes.ContainsKey($all[$index].Id)) { $script:outcomes[$all[$index].Id] = $parts[2] | ConvertFrom-Json }
                        $lane.Current = $null; $lane.Next = $index + 1
                        $lane.Deadline = [DateTime]::UtcNow.AddSeconds(30) # cleanup, then the next case's start
                    }
                }
                if ($exited) {
                    $null = $child.Process.WaitForExit(5000)
                    if ($null -ne $lane.Current) {
                        $printed = (Get-ChildPwshOutput $child) -replace '\s+', ' '
                        Stop-LaneCase $lane "crash: the child pwsh exited with code $($child.Process.ExitCode) during the case: $($printed.Substring([Math]::Max(0, $printed.Length - 400)))"
                    }
                    elseif ($lane.Seen -eq 0) {
                        throw "The corpus child pwsh exited before its first case: $(Get-ChildPwshOutput $child)"
                    }
                    else { $lane.Child = $null }
                    if ($lane.Next -lt $lane.End) { Start-Lane $lane }
                    continue
                }
                if ([DateTime]::UtcNow -gt $lane.Deadline) {
                    if ($null -eq $lane.Current) { Stop-ChildPwsh $child; throw "The corpus child pwsh did not start its next case in time: $(Get-ChildPwshOutput $child)" }
                    $id = $all[$lane.Current].Id
                    if (-not $script:outcomes.ContainsKey($id)) {
                        $script:outcomes[$id] = [pscustomobject]@{ Id = $id; Crash = "hang: the case did not finish within $($lane.Timeout) s" }
                    }
                    # A reader blocked on one of the case's FIFOs is released by a writer; anything else is killed.
                    $fifos = @(Get-Prop $all[$lane.Current] 'setup' @() | Where-Object { $_.PSObject.Properties['fifo'] } | ForEach-Object { Get-CorpusPath $_.fifo $lane.Dir })
                    if ($fifos.Count -gt 0 -and -not $lane.Released) {
                        foreach ($fifo in $fifos) { $null = [Threading.Tasks.Task]::Run([Action] { try { ([IO.FileStream]::new($fifo, 'Open', 'Write')).Dispose() } catch { } }.GetNewClosure()) }
                        $lane.Released = $true; $lane.Deadline = [DateTime]::UtcNow.AddSeconds(3)
                        continue
                    }
                    Stop-ChildPwsh $child
                    Stop-LaneCase $lane $script:outcomes[$id].Crash
                    if ($lane.Next -lt $lane.End) { Start-Lane $lane }
                }
            }
        }
    }
    finally {
        Remove-Item -LiteralPath $work -Recurse -Force -ErrorAction SilentlyContinue
    }
}

Describe 'Bad-input corpus' {
    It '<Id>' -ForEach $script:cases {
        $outcome = $script:outcomes[$Id]
        $outcome | Should -Not -BeNullOrEmpty -Because 'every case runs or is named as the one that hung or crashed'
        if ($outcome.PSObject.Properties['Skipped']) {
            Set-ItResult -Skipped -Because "no cmdlet equivalent: $($outcome.Skipped)"
            return
        }
        $failure = Test-CorpusOutcome $Case $outcome $script:manifest
        $known = Get-Prop (Get-Prop $Case 'knownFailing') 'ps'
        if ($known) {
            if ($failure) { Set-ItResult -Skipped -Because "known bug: $known (now: $failure)"; return }
            Write-Host "corpus case $Id passes: its knownFailing marker can be removed"
            return
        }
        $failure | Should -BeNullOrEmpty -Because "$Id must end as its manifest entry says"
    }
}

Describe 'The corpus manifest' {
    It 'has at least the minimum number of unique cases, in every required family' {
        $manifest = Get-CorpusManifest
        $cases = @(Get-CorpusCase)
        $cases.Count | Should -BeGreaterOrEqual $manifest.minimumCases
        @($cases.Id | Group-Object | Where-Object Count -gt 1).Name | Should -BeNullOrEmpty
        @($manifest.requiredFamilies | Where-Object { $_ -notin $cases.Family }) | Should -BeNullOrEmpty
    }
}
